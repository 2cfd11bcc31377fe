-- SOP pre-check (AI-2; tables in migration V29): the tenant's
-- rules (sop_rules, kinds in sop_rule_kinds), their management RPCs, the
-- invoice draft reader and the evaluation that precheck_invoice answers
-- with and invoice_create (receivables.sql) applies before it writes.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- Semantics (one place; sop_rule_kinds.description says the same to users):
--
-- * A rule applies to a draft when it is enabled and the draft's issue date
--   (default: the tenant's today) is within [active_from, active_to], both
--   ends inclusive, NULL open. Its parameters are the kind's defaults
--   overlaid with the rule's own. Rules run in kind order, then by name;
--   every failing check is one reason {rule, rule_id, kind, field, message,
--   severity}. valid = no reason of severity block; warn reasons never
--   change it.
-- * Money: line amount = quantity x unit_price x (100 - discount_pct) / 100,
--   rounded half-up to 2 decimals (numeric round(): half away from zero,
--   amounts are >= 0). Without lines the draft's subtotal is the price.
-- * PPN (vat_ppn, since 2025, PMK 131/2024): 12% of the DPP. DPP = 11/12 of
--   the price of non-luxury goods, the full price of luxury goods. The
--   expected PPN of the whole invoice is
--       round((non_luxury x 11 + luxury x 12) / 100, 0)
--   i.e. 12% x 11/12 = 11% exactly for non-luxury, 12% for luxury, summed
--   over the invoice and rounded once, half-up, to the whole rupiah (no
--   rounding of the DPP on the way: the figure is exact before the one
--   rounding). A draft's tax passes when it differs by at most the rule's
--   tolerance (default 0: one rupiah off fails). The class of a line is its
--   own luxury, else the draft's, else the rule's `luxury` parameter
--   (several vat_ppn rules: the first by name gives the default class).
--   Only IDR drafts are checked (faktur pajak of foreign-currency invoices
--   convert at the ministry's rate: out of scope).
-- * A draft without tax (precheck; invoice_create with lines) gets the
--   expected PPN as its tax (rounded to whole units for IDR, to the cent
--   otherwise), so it passes the PPN rule by construction.
-- * Due date (due_date): the due date is after the issue date (the
--   SOP's "tanggal jatuh tempo logis", a logical due date): it passes
--   when due_date >= issue_date + min_days. min_days defaults to 1, so a
--   due date on the issue date fails and the day after passes; a tenant
--   that accepts payment on the issue date sets min_days 0 (V41 moved the
--   rules still on V29's default of 0). Upper bound: at most the customer's
--   payment_terms_days, else the rule's default_terms_days, after the
--   issue date (neither: none). invoice_create refuses a due date before
--   the issue date whatever the rules say.
-- * NPWP (npwp_b2b): valid = bizos.norm_npwp() reads it and
--   bizos.npwp_valid() accepts its check digit. The NPWP is the draft's
--   buyer_npwp (precheck only) or the customer's.

-- ---------------------------------------------------------------- rule parameters

-- The payload_check spec of any rule's parameters: the union of every
-- kind's parameters (a key of another kind is refused per kind afterwards).
create or replace function sop_rule_parameters_spec() returns jsonb
language sql stable
as $$
  select coalesce(jsonb_object_agg(p.key, p.value), '{}'::jsonb)
    from sop_rule_kinds k cross join lateral jsonb_each(k.parameters) p
$$;
grant execute on function sop_rule_parameters_spec() to bizos_authenticated;
comment on function sop_rule_parameters_spec() is
  'The union of the parameters of every SOP rule kind (name -> JSON type), for payload_check of sop_rules.parameters.';

-- Checks a rule's parameters against its kind: only the kind's keys, of
-- their JSON types, in their ranges; errors name parameters.<key>. Returns
-- the parameters without JSON nulls (a null means: the kind's default).
create or replace function sop_rule_parameters_check(kind text, parameters jsonb) returns jsonb
language plpgsql stable
as $$
declare
  k sop_rule_kinds;
  p jsonb;
  n numeric;
  m numeric;
  key text;
begin
  select * into k from sop_rule_kinds x where x.code = sop_rule_parameters_check.kind;
  if not found then
    perform vocabulary_check('sop_rule_kinds', sop_rule_parameters_check.kind, 'kind');
    perform raise_field('kind', 'is required');
  end if;
  if parameters is null or jsonb_typeof(parameters) = 'null' then
    return '{}'::jsonb;
  end if;
  perform payload_check(parameters, k.parameters, 'parameters.');
  p := jsonb_strip_nulls(parameters);
  -- Numbers: 2 decimals (integers where the spec says so), in range.
  for key in select jsonb_object_keys(p) loop
    continue when k.parameters ->> key not in ('number', 'integer');
    n := payload_numeric(jsonb_build_object('parameters.' || key, p -> key), 'parameters.' || key, false,
                         case when k.parameters ->> key = 'integer' then 0 else 2 end);
    m := case key when 'max_pct' then 100 when 'min_days' then 365 when 'default_terms_days' then 365 end;
    if n < 0 then
      perform raise_field('parameters.' || key, 'must be 0 or more');
    end if;
    if n > m then
      perform raise_field('parameters.' || key, format('must be at most %s', m));
    end if;
  end loop;
  if (p ->> 'default_terms_days')::numeric < coalesce((p ->> 'min_days')::numeric, 0) then
    perform raise_field('parameters.default_terms_days', 'must be at least min_days');
  end if;
  return p;
end
$$;
select pin_search_path('sop_rule_parameters_check(text, jsonb)');
grant execute on function sop_rule_parameters_check(text, jsonb) to bizos_authenticated;
comment on function sop_rule_parameters_check(text, jsonb) is
  'The parameters of a rule of this kind without JSON nulls, or P0001 naming parameters.<key> (unknown key, wrong type, out of range).';

-- Every write of a rule (RPC, owner, migration) is checked the same way.
create or replace function sop_rules_before_write() returns trigger
language plpgsql
as $$
begin
  new.name := btrim(new.name);
  new.parameters := sop_rule_parameters_check(new.kind, new.parameters);
  return new;
end
$$;
select pin_search_path('sop_rules_before_write()');
revoke execute on function sop_rules_before_write() from public;
comment on function sop_rules_before_write() is
  'Trigger of sop_rules: trims the name and checks the parameters against the kind (sop_rule_parameters_check).';
create or replace trigger sop_rules_check before insert or update on sop_rules
  for each row execute function sop_rules_before_write();

-- Every new tenant starts with one rule per kind, with the kind's defaults
-- (existing tenants got theirs in V29).
create or replace function seed_default_sop_rules(tenant uuid) returns void
language plpgsql
as $$
begin
    insert into sop_rules (tenant_id, kind, name, parameters, severity)
    select tenant, k.code, k.code, k.defaults, k.default_severity from sop_rule_kinds k
    on conflict do nothing;
end
$$;
select pin_search_path('seed_default_sop_rules(uuid)');
revoke execute on function seed_default_sop_rules(uuid) from public;

create or replace function seed_default_sop_rules() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('select %I.seed_default_sop_rules($1)', tg_table_schema) using new.tenant_id;
  return null;
end
$$;
revoke execute on function seed_default_sop_rules() from public;
comment on function seed_default_sop_rules() is
  'Trigger of tenants: a new tenant gets one SOP rule per kind (name = kind) with the kind''s defaults and severity.';
create or replace trigger tenants_seed_sop_rules after insert on tenants
  for each row execute function seed_default_sop_rules();

-- Lines are added while their invoice is a DRAFT, or with the invoice in
-- the transaction that creates it (invoice_create): created_at is the
-- transaction's now(). An issued invoice's lines never change.
create or replace function invoice_lines_guard() returns trigger
language plpgsql
as $$
declare
  v_status text;
  v_created timestamptz;
begin
  select i.status, i.created_at into v_status, v_created
    from invoices i
   where i.tenant_id = new.tenant_id and i.invoice_id = new.invoice_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'invoice_id', message = 'invoice_id: invoice not found';
  end if;
  if v_status <> 'DRAFT' and v_created <> pg_catalog.now() then
    perform raise_field('invoice_id',
      format('the invoice is %s; lines are added to a DRAFT or with the invoice (invoice_create)', v_status));
  end if;
  return new;
end
$$;
select pin_search_path('invoice_lines_guard()');
revoke execute on function invoice_lines_guard() from public;
comment on function invoice_lines_guard() is
  'Trigger of invoice_lines: lines only for a DRAFT invoice or one created in the same transaction.';
create or replace trigger invoice_lines_guard before insert on invoice_lines
  for each row execute function invoice_lines_guard();

-- ---------------------------------------------------------------- rule RPCs

-- What the RPCs answer: the rule, its parameters as stored and as applied
-- (the kind's defaults overlaid), and whether it applies to a draft issued
-- today.
create or replace function sop_rule_json(r sop_rules) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'rule_id', r.rule_id, 'kind', r.kind, 'name', r.name, 'description', r.description,
    'parameters', r.parameters,
    'effective_parameters', (select k.defaults from sop_rule_kinds k where k.code = r.kind) || r.parameters,
    'severity', r.severity, 'enabled', r.enabled,
    'active_from', r.active_from, 'active_to', r.active_to,
    'applies_today', r.enabled and coalesce(r.active_from <= tenant_today(), true)
                     and coalesce(r.active_to >= tenant_today(), true),
    'created_at', r.created_at, 'updated_at', r.updated_at)
$$;
grant execute on function sop_rule_json(sop_rules) to bizos_authenticated;
comment on function sop_rule_json(sop_rules) is
  'A SOP rule as the RPCs answer it (effective_parameters: the kind''s defaults overlaid with the rule''s).';

-- sop_rule_list() -> {items: [rule]}: the rules of the caller's tenant, in
-- the order they are applied (kind, then name). Every member may read them.
create or replace function sop_rule_list() returns jsonb
language plpgsql stable
as $$
declare
  v_rules sop_rules[];
begin
  -- The rows first, then their JSON: on Citus the statement over
  -- sop_rules runs on a shard, whose row type is not sop_rules, and
  -- sop_rule_json(s) is not found there.
  select array_agg(s order by k.position, s.name) into v_rules
    from sop_rules s join sop_rule_kinds k on k.code = s.kind
   where s.tenant_id = bizos.tenant_id();
  return jsonb_build_object('items', coalesce((
    select jsonb_agg(sop_rule_json(v_rules[i]) order by i)
      from generate_subscripts(v_rules, 1) i), '[]'::jsonb));
end
$$;
grant execute on function sop_rule_list() to bizos_authenticated;
comment on function sop_rule_list() is
  'The SOP rules of the caller''s tenant, in the order they are applied: {items: [rule]}.';

-- The dates of a rule's payload (active_to not before active_from).
create or replace function sop_rule_dates_check(active_from date, active_to date) returns void
language plpgsql immutable
as $$
begin
  if active_to < active_from then
    perform raise_field('active_to', format('%s is before active_from %s', active_to, active_from));
  end if;
end
$$;
grant execute on function sop_rule_dates_check(date, date) to bizos_authenticated;
comment on function sop_rule_dates_check(date, date) is
  'P0001 naming active_to when it is before active_from.';

-- sop_rule_create({kind, name, description?, parameters?, severity?
--   (default: the kind's), enabled? (true), active_from?, active_to?}) -> rule
create or replace function sop_rule_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_kind text;
  v_name text;
  v_severity text;
  v_from date;
  v_to date;
  r sop_rules;
begin
  perform require_permission('sop.manage');
  perform payload_check(payload, jsonb_build_object(
    'kind', 'text', 'name', 'text', 'description', 'text', 'parameters', sop_rule_parameters_spec(),
    'severity', 'text', 'enabled', 'boolean', 'active_from', 'date', 'active_to', 'date'));
  v_kind := vocabulary_check('sop_rule_kinds', lower(payload_text(payload, 'kind', true, 40)), 'kind');
  v_name := payload_text(payload, 'name', true, 100);
  v_severity := vocabulary_check('sop_severities',
    lower(coalesce(payload_text(payload, 'severity', false, 20),
                   (select k.default_severity from sop_rule_kinds k where k.code = v_kind))), 'severity');
  v_from := payload_date(payload, 'active_from');
  v_to := payload_date(payload, 'active_to');
  perform sop_rule_dates_check(v_from, v_to);
  begin
    insert into sop_rules (tenant_id, kind, name, description, parameters, severity, enabled, active_from, active_to)
    values (bizos.tenant_id(), v_kind, v_name, payload_text(payload, 'description', false, 1000),
            sop_rule_parameters_check(v_kind, payload -> 'parameters'), v_severity,
            coalesce(payload_bool(payload, 'enabled'), true), v_from, v_to)
    returning * into r;
  exception when unique_violation then
    raise exception using errcode = '23505', column = 'name', constraint = 'sop_rules_name_key',
      message = format('name: the tenant already has a rule named %L', v_name);
  end;
  return sop_rule_json(r);
end
$$;
grant execute on function sop_rule_create(jsonb) to bizos_authenticated;
comment on function sop_rule_create(jsonb) is
  'Adds a SOP rule (sop.manage): kind, name, parameters checked against the kind, severity, enabled, active dates.';

-- sop_rule_update(rule_id, {name?, description?, parameters?, severity?,
--   enabled?, active_from?, active_to?}) -> rule. PATCH: a field left out
-- keeps its value; null clears description and the active dates and resets
-- parameters to the kind's defaults. The kind never changes (a new rule).
create or replace function sop_rule_update(rule_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  r sop_rules;
begin
  perform require_permission('sop.manage');
  perform payload_check(payload, jsonb_build_object(
    'name', 'text', 'description', 'text', 'parameters', sop_rule_parameters_spec(),
    'severity', 'text', 'enabled', 'boolean', 'active_from', 'date', 'active_to', 'date'));
  select * into r from sop_rules s
   where s.tenant_id = v_tenant and s.rule_id = sop_rule_update.rule_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'rule_id',
      message = 'rule_id: no SOP rule with this id in the tenant';
  end if;
  r.name := coalesce(payload_text(payload, 'name', false, 100), r.name);
  if payload ? 'description' then
    r.description := payload_text(payload, 'description', false, 1000);
  end if;
  if payload ? 'parameters' then
    r.parameters := sop_rule_parameters_check(r.kind, payload -> 'parameters');
  end if;
  r.severity := coalesce(vocabulary_check('sop_severities', lower(payload_text(payload, 'severity', false, 20)), 'severity'),
                         r.severity);
  r.enabled := coalesce(payload_bool(payload, 'enabled'), r.enabled);
  if payload ? 'active_from' then
    r.active_from := payload_date(payload, 'active_from');
  end if;
  if payload ? 'active_to' then
    r.active_to := payload_date(payload, 'active_to');
  end if;
  perform sop_rule_dates_check(r.active_from, r.active_to);
  begin
    update sop_rules s
       set name = r.name, description = r.description, parameters = r.parameters, severity = r.severity,
           enabled = r.enabled, active_from = r.active_from, active_to = r.active_to
     where s.tenant_id = r.tenant_id and s.rule_id = r.rule_id
    returning * into r;
  exception when unique_violation then
    raise exception using errcode = '23505', column = 'name', constraint = 'sop_rules_name_key',
      message = format('name: the tenant already has a rule named %L', r.name);
  end;
  return sop_rule_json(r);
end
$$;
grant execute on function sop_rule_update(uuid, jsonb) to bizos_authenticated;
comment on function sop_rule_update(uuid, jsonb) is
  'Changes a SOP rule (sop.manage): name, description, parameters, severity, on/off, active dates (PATCH semantics).';

-- sop_rule_delete(rule_id) -> {rule_id, deleted: true}
create or replace function sop_rule_delete(rule_id uuid) returns jsonb
language plpgsql
as $$
begin
  perform require_permission('sop.manage');
  delete from sop_rules s
   where s.tenant_id = bizos.tenant_id() and s.rule_id = sop_rule_delete.rule_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'rule_id',
      message = 'rule_id: no SOP rule with this id in the tenant';
  end if;
  return jsonb_build_object('rule_id', sop_rule_delete.rule_id, 'deleted', true);
end
$$;
grant execute on function sop_rule_delete(uuid) to bizos_authenticated;
comment on function sop_rule_delete(uuid) is 'Deletes a SOP rule (sop.manage): {rule_id, deleted}.';

-- ---------------------------------------------------------------- invoice drafts

-- invoice_draft(payload, for_create) -> the draft read and checked for
-- form, as the rules see it:
--   {customer_id, customer_npwp, customer_terms_days, issue_date, due_date,
--    terms_days, currency, subtotal, tax, total, status, notes, b2b, luxury,
--    buyer_npwp, lines: [{line_no, description, quantity, unit_price,
--    discount_pct, luxury, amount (as sent), computed}]}
-- Payload: {customer_id, issue_date?, due_date? | terms_days?, currency?,
--   subtotal? (required without lines), tax? (required by invoice_create
--   without lines), total?, status?, notes?, b2b?, luxury?, lines?: [{
--   description, quantity, unit_price, discount_pct?, luxury?, amount?}],
--   buyer_npwp? (pre-check only: the NPWP of an invoice is its customer's)}.
-- Malformed fields raise P0001 naming them (lines[1].quantity); what the
-- SOP rules judge (a due date before the issue date, a discount, totals)
-- does not raise here. The customer is read as the caller (P0002 when not
-- visible). Default due date: issue date + terms_days, else the customer's
-- payment terms, else 30 days.
create or replace function invoice_draft(payload jsonb, for_create boolean default false) returns jsonb
language plpgsql stable
as $$
declare
  spec jsonb := '{"customer_id": "uuid", "issue_date": "date", "due_date": "date", "terms_days": "integer",
                  "currency": "text", "subtotal": "number", "tax": "number", "total": "number", "status": "text",
                  "notes": "text", "b2b": "boolean", "luxury": "boolean",
                  "lines": [{"description": "text", "quantity": "number", "unit_price": "number",
                             "discount_pct": "number", "luxury": "boolean", "amount": "number"}]}';
  v_customer uuid;
  v_customer_npwp text;
  v_customer_terms integer;
  v_issue date;
  v_due date;
  v_terms integer;
  v_currency text;
  v_subtotal numeric;
  v_tax numeric;
  v_total numeric;
  v_status text;
  v_lines jsonb := '[]'::jsonb;
  l jsonb;
  i integer;
  f text;
  v_qty numeric;
  v_price numeric;
  v_disc numeric;
  v_amount numeric;
begin
  if not for_create then
    spec := spec || '{"buyer_npwp": "text"}';
  end if;
  perform payload_check(payload, spec);
  v_customer := payload_uuid(payload, 'customer_id', for_create);
  if v_customer is not null then
    select cu.npwp, cu.payment_terms_days into v_customer_npwp, v_customer_terms
      from customers cu
     where cu.tenant_id = bizos.tenant_id() and cu.customer_id = v_customer;
    if not found then
      raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: customer not found';
    end if;
  end if;
  v_issue := coalesce(payload_date(payload, 'issue_date'), tenant_today());
  v_due := payload_date(payload, 'due_date');
  v_terms := payload_integer(payload, 'terms_days');
  if v_due is not null and v_terms is not null then
    perform raise_field('terms_days', 'send either due_date or terms_days, not both');
  end if;
  if v_terms is not null and (v_terms < 0 or v_terms > 365) then
    perform raise_field('terms_days', 'must be between 0 and 365');
  end if;
  v_due := coalesce(v_due, v_issue + coalesce(v_terms, v_customer_terms, 30));
  v_currency := upper(coalesce(payload_text(payload, 'currency', false, 3), 'IDR'));
  if v_currency !~ '^[A-Z]{3}$' then
    perform raise_field('currency', 'must be an ISO 4217 code such as IDR');
  end if;

  if jsonb_array_length(coalesce(nullif(payload -> 'lines', 'null'::jsonb), '[]'::jsonb)) > 200 then
    perform raise_field('lines', 'at most 200 lines');
  end if;
  for l, i in select e.value, e.ordinality::integer
                from jsonb_array_elements(coalesce(nullif(payload -> 'lines', 'null'::jsonb), '[]'::jsonb))
                     with ordinality e
  loop
    -- The line's fields under their paths (lines[0].quantity), so the
    -- payload readers name them.
    f := format('lines[%s].', i - 1);
    select jsonb_object_agg(f || x.key, x.value) into l from jsonb_each(l) x;
    l := coalesce(l, '{}'::jsonb);
    v_qty := payload_positive(l, f || 'quantity', true, 3);
    v_price := payload_numeric(l, f || 'unit_price', true, 2);
    if v_price < 0 then
      perform raise_field(f || 'unit_price', 'must be 0 or more');
    end if;
    v_disc := coalesce(payload_numeric(l, f || 'discount_pct', false, 2), 0);
    if v_disc < 0 or v_disc > 100 then
      perform raise_field(f || 'discount_pct', 'must be between 0 and 100');
    end if;
    v_amount := payload_numeric(l, f || 'amount', false, 2);
    v_lines := v_lines || jsonb_build_object(
      'line_no', i,
      'description', payload_text(l, f || 'description', true, 500),
      'quantity', v_qty, 'unit_price', v_price, 'discount_pct', v_disc,
      'luxury', payload_bool(l, f || 'luxury'),
      'amount', v_amount,
      'computed', round(v_qty * v_price * (100 - v_disc) / 100, 2));
    if round(v_qty * v_price * (100 - v_disc) / 100, 2) >= 1e15 then
      perform raise_field(f || 'quantity', 'the line amount is too large');
    end if;
  end loop;

  v_subtotal := payload_numeric(payload, 'subtotal', jsonb_array_length(v_lines) = 0);
  if v_subtotal <= 0 then
    perform raise_field('subtotal', 'must be greater than 0');
  end if;
  v_tax := payload_numeric(payload, 'tax', for_create and jsonb_array_length(v_lines) = 0);
  if v_tax < 0 then
    perform raise_field('tax', 'must be 0 or more (PPN: 12% of a DPP of 11/12 of the price, i.e. 11%, for non-luxury goods)');
  end if;
  if v_tax > v_subtotal then
    perform raise_field('tax', 'cannot exceed the subtotal');
  end if;
  v_total := payload_numeric(payload, 'total');
  v_status := upper(coalesce(payload_text(payload, 'status', false, 10), 'ISSUED'));
  if v_status not in ('DRAFT', 'ISSUED') then
    perform raise_field('status', 'a new invoice is DRAFT or ISSUED');
  end if;

  return jsonb_build_object(
    'customer_id', v_customer, 'customer_npwp', v_customer_npwp, 'customer_terms_days', v_customer_terms,
    'issue_date', v_issue, 'due_date', v_due, 'terms_days', v_terms, 'currency', v_currency,
    'subtotal', v_subtotal, 'tax', v_tax, 'total', v_total, 'status', v_status,
    'notes', payload_text(payload, 'notes', false, 2000),
    'b2b', payload_bool(payload, 'b2b'), 'luxury', payload_bool(payload, 'luxury'),
    'buyer_npwp', payload_text(payload, 'buyer_npwp', false, 40),
    'lines', v_lines);
end
$$;
grant execute on function invoice_draft(jsonb, boolean) to bizos_authenticated;
comment on function invoice_draft(jsonb, boolean) is
  'An invoice draft read and checked for form (fields named on error), with computed line amounts and the customer''s NPWP and terms; the SOP rules judge the rest.';

-- sop_evaluate_invoice(draft) -> {valid, reasons, figures, rules}
-- draft: what invoice_draft returns. Applies the caller's tenant's rules
-- active on the draft's issue date (see the semantics at the top). Runs as
-- the caller: reads the rules (every member may) and nothing else.
--   figures: {lines_subtotal, subtotal, dpp, ppn_expected, tax, total,
--             issue_date, due_date, terms_days}
--   rules:   the names of the rules applied, in order.
create or replace function sop_evaluate_invoice(draft jsonb) returns jsonb
language plpgsql stable
as $$
declare
  v_issue date := (draft ->> 'issue_date')::date;
  v_due date := (draft ->> 'due_date')::date;
  v_lines jsonb := coalesce(draft -> 'lines', '[]'::jsonb);
  v_has_lines boolean;
  v_lux_default boolean;
  v_lines_sum numeric;
  v_subtotal numeric;
  v_base_std numeric := 0;
  v_base_lux numeric := 0;
  v_ppn numeric;
  v_dpp numeric;
  v_tax numeric;
  v_total numeric;
  v_terms integer;
  v_npwp text;
  v_b2b boolean;
  r record;
  p jsonb;
  l jsonb;
  v_reasons jsonb := '[]'::jsonb;
  v_rules jsonb := '[]'::jsonb;
  v_found jsonb;
  v_tol numeric;
  v_min_days integer;
begin
  v_has_lines := jsonb_array_length(v_lines) > 0;
  -- The default PPN class: the draft's, else the first active vat_ppn
  -- rule's, else non-luxury.
  v_lux_default := coalesce((draft ->> 'luxury')::boolean, (
    select ((k.defaults || s.parameters) ->> 'luxury')::boolean
      from sop_rules s join sop_rule_kinds k on k.code = s.kind
     where s.tenant_id = bizos.tenant_id() and s.kind = 'vat_ppn' and s.enabled
       and coalesce(s.active_from <= v_issue, true) and coalesce(s.active_to >= v_issue, true)
     order by s.name limit 1), false);
  if v_has_lines then
    select sum((x ->> 'computed')::numeric),
           coalesce(sum((x ->> 'computed')::numeric) filter (
             where not coalesce((x ->> 'luxury')::boolean, v_lux_default)), 0),
           coalesce(sum((x ->> 'computed')::numeric) filter (
             where coalesce((x ->> 'luxury')::boolean, v_lux_default)), 0)
      into v_lines_sum, v_base_std, v_base_lux
      from jsonb_array_elements(v_lines) x;
  end if;
  v_subtotal := coalesce((draft ->> 'subtotal')::numeric, v_lines_sum);
  if not v_has_lines then
    if v_lux_default then
      v_base_lux := v_subtotal;
    else
      v_base_std := v_subtotal;
    end if;
  end if;
  -- 12% of DPP; DPP = 11/12 of non-luxury + all of luxury: exactly
  -- (non_luxury x 11 + luxury x 12) / 100, rounded once, half-up.
  v_ppn := round((v_base_std * 11 + v_base_lux * 12) / 100,
                 case when draft ->> 'currency' = 'IDR' then 0 else 2 end);
  v_dpp := round(v_base_std * 11 / 12, 2) + v_base_lux;
  v_tax := coalesce((draft ->> 'tax')::numeric, v_ppn);
  v_total := v_subtotal + v_tax;
  v_terms := (draft ->> 'customer_terms_days')::integer;

  for r in
    select s.rule_id, s.name, s.kind, s.severity, k.defaults || s.parameters as params
      from sop_rules s join sop_rule_kinds k on k.code = s.kind
     where s.tenant_id = bizos.tenant_id() and s.enabled
       and coalesce(s.active_from <= v_issue, true) and coalesce(s.active_to >= v_issue, true)
     order by k.position, s.name
  loop
    p := r.params;
    v_rules := v_rules || to_jsonb(r.name);
    -- [{field, message}] of this rule.
    v_found := '[]'::jsonb;
    case r.kind
      when 'vat_ppn' then
        v_tol := coalesce((p ->> 'tolerance')::numeric, 0);
        if draft ->> 'currency' = 'IDR' and abs(v_tax - v_ppn) > v_tol then
          v_found := v_found || jsonb_build_object('field', 'tax', 'message', format(
            'tax: %s is not the PPN of this invoice: expected %s = 12%% of DPP %s (%s), rounded half-up to the rupiah',
            v_tax, v_ppn, v_dpp,
            case when v_base_lux = 0 then format('11/12 of %s, non-luxury: effectively 11%%', v_base_std)
                 when v_base_std = 0 then format('%s, luxury: the full price', v_base_lux)
                 else format('11/12 of %s non-luxury + %s luxury', v_base_std, v_base_lux) end));
        end if;
      when 'max_discount' then
        for l in select x from jsonb_array_elements(v_lines) x
                  where (x ->> 'discount_pct')::numeric > (p ->> 'max_pct')::numeric
                  order by (x ->> 'line_no')::integer
        loop
          v_found := v_found || jsonb_build_object(
            'field', format('lines[%s].discount_pct', (l ->> 'line_no')::integer - 1),
            'message', format('lines[%s].discount_pct: %s%% is over the maximum discount of %s%%',
                              (l ->> 'line_no')::integer - 1, l ->> 'discount_pct', p ->> 'max_pct'));
        end loop;
      when 'due_date' then
        v_min_days := coalesce((p ->> 'min_days')::integer, 1);
        if v_due < v_issue + v_min_days then
          v_found := v_found || jsonb_build_object('field', 'due_date', 'message',
            case v_min_days
              when 0 then format('due_date: %s is before the issue date %s', v_due, v_issue)
              when 1 then format('due_date: %s is not after the issue date %s; the SOP wants the due date after the issue date',
                                 v_due, v_issue)
              else format('due_date: %s is less than %s days after the issue date %s', v_due, v_min_days, v_issue) end);
        elsif coalesce(v_terms, (p ->> 'default_terms_days')::integer) is not null
              and v_due > v_issue + coalesce(v_terms, (p ->> 'default_terms_days')::integer) then
          v_found := v_found || jsonb_build_object('field', 'due_date', 'message', format(
            'due_date: %s is %s days after the issue date %s; the %s payment terms are %s days',
            v_due, v_due - v_issue, v_issue,
            case when v_terms is null then 'tenant''s default' else 'customer''s' end,
            coalesce(v_terms, (p ->> 'default_terms_days')::integer)));
        end if;
      when 'totals_match' then
        v_tol := coalesce((p ->> 'tolerance')::numeric, 0);
        for l in select x from jsonb_array_elements(v_lines) x
                  where abs((x ->> 'amount')::numeric - (x ->> 'computed')::numeric) > v_tol
                  order by (x ->> 'line_no')::integer
        loop
          v_found := v_found || jsonb_build_object(
            'field', format('lines[%s].amount', (l ->> 'line_no')::integer - 1),
            'message', format('lines[%s].amount: %s is not quantity x unit price less the discount (%s)',
                              (l ->> 'line_no')::integer - 1, l ->> 'amount', l ->> 'computed'));
        end loop;
        if v_has_lines and abs(v_subtotal - v_lines_sum) > v_tol then
          v_found := v_found || jsonb_build_object('field', 'subtotal', 'message', format(
            'subtotal: %s is not the sum of the lines (%s)', v_subtotal, v_lines_sum));
        end if;
        if abs((draft ->> 'total')::numeric - v_total) > v_tol then
          v_found := v_found || jsonb_build_object('field', 'total', 'message', format(
            'total: %s is not subtotal + tax (%s + %s = %s)', draft ->> 'total', v_subtotal, v_tax, v_total));
        end if;
      when 'npwp_b2b' then
        v_b2b := coalesce((draft ->> 'b2b')::boolean, (p ->> 'b2b_default')::boolean, true);
        if v_b2b and v_total > (p ->> 'threshold')::numeric then
          v_npwp := coalesce(draft ->> 'buyer_npwp', draft ->> 'customer_npwp');
          if v_npwp is null then
            v_found := v_found || jsonb_build_object(
              'field', case when draft ->> 'customer_id' is null then 'buyer_npwp' else 'customer_id' end,
              'message', format('%s: a B2B invoice over %s needs the buyer''s NPWP; %s',
                                case when draft ->> 'customer_id' is null then 'buyer_npwp' else 'customer_id' end,
                                p ->> 'threshold',
                                case when draft ->> 'customer_id' is null then 'none was given'
                                     else 'the customer has none' end));
          elsif bizos.norm_npwp(v_npwp) is null or not bizos.npwp_valid(v_npwp) then
            v_found := v_found || jsonb_build_object(
              'field', case when draft ->> 'buyer_npwp' is not null then 'buyer_npwp' else 'customer_id' end,
              'message', format('%s: the buyer''s NPWP is not valid (16 digits, or 15 with a correct check digit); a B2B invoice over %s needs a valid one',
                                case when draft ->> 'buyer_npwp' is not null then 'buyer_npwp' else 'customer_id' end,
                                p ->> 'threshold'));
          end if;
        end if;
      else
        null;
    end case;
    v_reasons := v_reasons || coalesce((
      select jsonb_agg(jsonb_build_object('rule', r.name, 'rule_id', r.rule_id, 'kind', r.kind,
                                          'field', x ->> 'field', 'message', x ->> 'message',
                                          'severity', r.severity) order by n)
        from jsonb_array_elements(v_found) with ordinality as y(x, n)), '[]'::jsonb);
  end loop;

  return jsonb_build_object(
    'valid', not exists (select 1 from jsonb_array_elements(v_reasons) x where x ->> 'severity' = 'block'),
    'reasons', v_reasons,
    'figures', jsonb_build_object(
      'lines_subtotal', v_lines_sum, 'subtotal', v_subtotal, 'dpp', v_dpp, 'ppn_expected', v_ppn,
      'tax', v_tax, 'total', v_total, 'issue_date', v_issue, 'due_date', v_due,
      'terms_days', v_terms),
    'rules', v_rules);
end
$$;
select pin_search_path('sop_evaluate_invoice(jsonb)');
grant execute on function sop_evaluate_invoice(jsonb) to bizos_authenticated;
comment on function sop_evaluate_invoice(jsonb) is
  'The SOP rules of the caller''s tenant active on the draft''s issue date applied to a draft (invoice_draft): {valid, reasons, figures, rules}.';

-- precheck_invoice(payload) -> {valid, reasons, figures, rules}: the
-- draft (invoice_draft's payload; customer_id optional, buyer_npwp
-- allowed) judged by the tenant's rules as invoice_create would judge it.
-- Writes nothing; reads as the caller (a customer the caller cannot read
-- is P0002). Any member may pre-check.
create or replace function precheck_invoice(payload jsonb) returns jsonb
language plpgsql stable
as $$
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  return sop_evaluate_invoice(invoice_draft(payload, false));
end
$$;
grant execute on function precheck_invoice(jsonb) to bizos_authenticated;
comment on function precheck_invoice(jsonb) is
  'AI-2: an invoice draft checked against the tenant''s SOP rules: {valid, reasons: [{rule, rule_id, kind, field, message, severity}], figures, rules}.';
