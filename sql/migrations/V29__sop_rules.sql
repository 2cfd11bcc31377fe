-- SOP pre-check (AI-2, issue 17): the tenant's SOP rules as data
-- (sop_rules), evaluated in the database against an invoice draft
-- (precheck_invoice, and invoice_create before it writes); invoice lines;
-- customers' payment terms.
--
-- Functions, the trigger attachments that need them (parameter checks of
-- sop_rules, the line guard of invoice_lines, the default rules of a new
-- tenant) and the rule semantics live in sql/api/precheck.sql.
--
-- Concerns of this migration, each in its own section: the two
-- vocabularies, the rules table, invoice lines, the draft columns of
-- invoices and customers, then the data of existing tenants (permission
-- and default rules).

-- ---------------------------------------------------------------- vocabularies
create table sop_severities (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint sop_severities_pkey primary key (code),
  constraint sop_severities_position_key unique (position),
  constraint sop_severities_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table sop_severities is 'Vocabulary: what a failing SOP rule does (sop_rules.severity; lower case).';
insert into sop_severities (code, position, description) values
  ('block', 1, 'the draft is not valid: invoice_create refuses it with the reasons'),
  ('warn',  2, 'advisory: the draft stays valid; invoice_create writes it and returns the reason as a warning');
grant select on sop_severities to bizos_authenticated;

-- A kind of rule: what it checks (precheck.sql, sop_evaluate_invoice), the
-- parameters it takes with their JSON types (the payload_check spec of
-- sop_rules.parameters), their defaults, and the severity of the rule every
-- tenant starts with. Kinds are code: a new kind is a row here and a branch
-- of sop_evaluate_invoice / sop_rule_parameters_check.
create table sop_rule_kinds (
  code             text     not null,
  position         smallint not null,
  description      text,
  parameters       jsonb    not null default '{}',
  defaults         jsonb    not null default '{}',
  default_severity text     not null,
  constraint sop_rule_kinds_pkey primary key (code),
  constraint sop_rule_kinds_position_key unique (position),
  constraint sop_rule_kinds_code_check check (code ~ '^[a-z][a-z0-9_]{0,39}$'),
  constraint sop_rule_kinds_parameters_check check (jsonb_typeof(parameters) = 'object'),
  constraint sop_rule_kinds_defaults_check check (jsonb_typeof(defaults) = 'object'),
  constraint sop_rule_kinds_default_severity_fkey foreign key (default_severity) references sop_severities (code)
);
comment on table sop_rule_kinds is
  'Vocabulary: the kinds of SOP rules (sop_rules.kind), with the parameters each takes (name -> JSON type), their defaults and the severity of a new tenant''s rule.';
-- Defaults: nothing existing callers or the demo send is refused. PPN and
-- NPWP warn (invoices written before this had no rule; a tenant makes
-- them block); discounts and line totals exist only in drafts with lines;
-- the due-date rule without terms only says due >= issue, which
-- invoice_create always required.
insert into sop_rule_kinds (code, position, description, parameters, defaults, default_severity) values
  ('vat_ppn', 1,
   'PPN since 2025 (PMK 131/2024): 12% of the tax base (DPP); DPP = 11/12 of the price for non-luxury goods (effectively 11%), the full price for luxury goods (12%). The expected tax is recomputed to the rupiah (half-up, once per invoice) and compared with the draft''s tax. luxury: the class of lines and drafts that do not say; tolerance: rupiah of difference allowed. IDR drafts only.',
   '{"luxury": "boolean", "tolerance": "number"}', '{"luxury": false, "tolerance": 0}', 'warn'),
  ('max_discount', 2,
   'No line discount above max_pct percent (exactly max_pct passes).',
   '{"max_pct": "number"}', '{"max_pct": 20}', 'block'),
  ('due_date', 3,
   'The due date is at least min_days after the issue date, and at most the customer''s payment terms (customers.payment_terms_days, else default_terms_days; neither: no upper bound) after it.',
   '{"min_days": "integer", "default_terms_days": "integer"}', '{"min_days": 0}', 'block'),
  ('totals_match', 4,
   'With lines: every line amount is quantity x unit price less its discount, the subtotal the sum of the lines; and a stated total is subtotal + tax (difference at most tolerance).',
   '{"tolerance": "number"}', '{"tolerance": 0}', 'block'),
  ('npwp_b2b', 5,
   'A B2B invoice (the draft''s b2b, else b2b_default) whose total is above threshold needs the buyer''s NPWP, valid (bizos.norm_npwp and its check digit).',
   '{"threshold": "number", "b2b_default": "boolean"}', '{"threshold": 10000000, "b2b_default": true}', 'warn');
grant select on sop_rule_kinds to bizos_authenticated;

-- ---------------------------------------------------------------- rules
create table sop_rules (
  tenant_id   uuid        not null,
  rule_id     uuid        not null default gen_random_uuid(),
  kind        text        not null,
  -- What reasons call the rule (reasons[].rule); unique in the tenant.
  name        text        not null,
  description text,
  -- The kind's parameters (checked on write, naming parameters.<key>);
  -- absent keys take sop_rule_kinds.defaults.
  parameters  jsonb       not null default '{}',
  severity    text        not null default 'block',
  -- Switched off: not applied. Otherwise applied to drafts whose issue date
  -- is within [active_from, active_to] (open ends when NULL).
  enabled     boolean     not null default true,
  active_from date,
  active_to   date,
  created_by  uuid        default bizos.uid(),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint sop_rules_pkey primary key (tenant_id, rule_id),
  constraint sop_rules_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint sop_rules_kind_fkey foreign key (kind) references sop_rule_kinds (code),
  constraint sop_rules_severity_fkey foreign key (severity) references sop_severities (code),
  constraint sop_rules_name_key unique (tenant_id, name),
  constraint sop_rules_name_check check (length(btrim(name)) between 1 and 100),
  constraint sop_rules_description_check check (length(description) <= 1000),
  constraint sop_rules_parameters_check check (jsonb_typeof(parameters) = 'object'),
  constraint sop_rules_active_to_check check (active_to >= active_from)
);
comment on table sop_rules is
  'The tenant''s SOP rules (AI-2): kind, parameters, severity block|warn, on/off and active dates; evaluated by precheck_invoice and invoice_create.';
create index sop_rules_kind_idx on sop_rules (tenant_id, kind);

create trigger sop_rules_stamp_timestamps before insert or update on sop_rules
  for each row execute function stamp_timestamps();
create trigger sop_rules_keep_created_by before insert or update on sop_rules
  for each row execute function keep_created_by();
select bizos.enable_audit('sop_rules');

-- Every member reads the rules of the tenant (a pre-check, which runs as
-- the caller, applies them); holders of sop.manage change them.
alter table sop_rules enable row level security;
create policy "members read the SOP rules of their tenant"
  on sop_rules for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "holders of sop.manage add SOP rules"
  on sop_rules for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('sop.manage')));
create policy "holders of sop.manage change SOP rules"
  on sop_rules for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('sop.manage')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('sop.manage')));
create policy "holders of sop.manage delete SOP rules"
  on sop_rules for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('sop.manage')));
grant select, delete on sop_rules to bizos_authenticated;
grant insert (tenant_id, rule_id, kind, name, description, parameters, severity, enabled, active_from, active_to)
  on sop_rules to bizos_authenticated;
grant update (name, description, parameters, severity, enabled, active_from, active_to)
  on sop_rules to bizos_authenticated;

-- ---------------------------------------------------------------- invoice lines
-- Written with their invoice by invoice_create (same transaction); the
-- guard of precheck.sql refuses lines for an invoice that is neither DRAFT
-- nor created in the current transaction. No updates: an invoice's lines
-- are what it was issued with; a DRAFT's go with it (on delete cascade).
create table invoice_lines (
  tenant_id    uuid          not null,
  invoice_id   uuid          not null,
  -- 1-based position on the invoice.
  line_no      integer       not null,
  description  text          not null,
  quantity     numeric(18,3) not null,
  unit_price   numeric(18,2) not null,
  discount_pct numeric(5,2)  not null default 0,
  -- PPN class of the line: NULL = the invoice's (invoices.luxury, else the
  -- tenant's vat_ppn rule).
  luxury       boolean,
  -- quantity x unit_price x (100 - discount_pct) / 100, rounded half-up
  -- to 2 decimals (the column's scale).
  amount       numeric(18,2) not null,
  created_at   timestamptz   not null default now(),
  updated_at   timestamptz   not null default now(),
  constraint invoice_lines_pkey primary key (tenant_id, invoice_id, line_no),
  constraint invoice_lines_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint invoice_lines_invoice_id_fkey foreign key (tenant_id, invoice_id)
    references invoices (tenant_id, invoice_id) on delete cascade,
  constraint invoice_lines_line_no_check check (line_no >= 1),
  constraint invoice_lines_description_check check (length(btrim(description)) between 1 and 500),
  constraint invoice_lines_quantity_check check (quantity > 0),
  constraint invoice_lines_unit_price_check check (unit_price >= 0),
  constraint invoice_lines_discount_pct_check check (discount_pct between 0 and 100),
  constraint invoice_lines_amount_check check (amount = round(quantity * unit_price * (100 - discount_pct) / 100, 2))
);
comment on table invoice_lines is
  'Lines of an invoice (AI-2): quantity, unit price, discount and PPN class; amount = quantity x unit_price less the discount, half-up to 2 decimals.';

create trigger invoice_lines_stamp_timestamps before insert or update on invoice_lines
  for each row execute function stamp_timestamps();
select bizos.enable_audit('invoice_lines');

-- Whoever reads the invoice reads its lines (the invoices policy applies
-- inside the subquery); holders of invoice.create add them.
alter table invoice_lines enable row level security;
create policy "readers of an invoice read its lines"
  on invoice_lines for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from invoices i
                      where i.tenant_id = invoice_lines.tenant_id and i.invoice_id = invoice_lines.invoice_id));
create policy "holders of invoice.create add lines to invoices"
  on invoice_lines for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.create')));
grant select on invoice_lines to bizos_authenticated;
grant insert (tenant_id, invoice_id, line_no, description, quantity, unit_price, discount_pct, luxury, amount)
  on invoice_lines to bizos_authenticated;

-- ---------------------------------------------------------------- draft columns
-- What a draft says about its buyer and goods, kept with the invoice so the
-- check can be repeated: NULL = not stated (the rules' defaults apply).
alter table invoices add column b2b boolean;
alter table invoices add column luxury boolean;
comment on column invoices.b2b is 'Sold to a business (NPWP rule); NULL: not stated (the npwp_b2b rule''s b2b_default).';
comment on column invoices.luxury is 'PPN class of lines that do not state one (and of an invoice without lines); NULL: the vat_ppn rule''s default.';
grant insert (b2b, luxury) on invoices to bizos_authenticated;
grant update (b2b, luxury) on invoices to bizos_authenticated;

alter table customers add column payment_terms_days integer;
alter table customers add constraint customers_payment_terms_days_check
  check (payment_terms_days between 0 and 365);
comment on column customers.payment_terms_days is
  'Days from issue to due date agreed with the customer (due_date rule; invoice_create''s default terms); NULL: none agreed.';
grant update (payment_terms_days) on customers to bizos_authenticated;

-- ---------------------------------------------------------------- existing tenants
-- Who manages the rules (new tenants get it from default_role_permissions(),
-- platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'sop.manage'
  from tenants t
 cross join (values ('super_admin'), ('finance')) as r (app_role)
on conflict do nothing;

-- One rule per kind with the kind's defaults (new tenants: the trigger of
-- precheck.sql, from the same table).
insert into sop_rules (tenant_id, kind, name, parameters, severity)
select t.tenant_id, k.code, k.code, k.defaults, k.default_severity
  from tenants t cross join sop_rule_kinds k
on conflict do nothing;
