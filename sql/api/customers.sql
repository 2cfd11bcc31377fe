-- Customers over HTTP: a customer with its prospects, leads,
-- invoices and documents as the caller may read them, and attaching
-- documents (objects of bucket customer-documents) to a customer.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- customer_detail(customer_id) -> the customer (a row of customers) with
-- `prospects`, `leads` and `invoices` (the 100 most recent of each; lists
-- with filters and pages are GET /api/leads?customer_id= and GET
-- /api/invoices?customer_id=), `documents` and `lookalikes` (customers
-- with similar names for review, customer_lookalikes_of); NULL when the
-- caller may not read the customer.
-- Security invoker on purpose: every part is read under the caller's own
-- row-level security (a finance user sees the invoices but not the
-- prospects of a salesperson; a salesperson only what their team owns),
-- and invoices come from v_invoices (outstanding as every report says it).
create or replace function customer_detail(customer_id uuid) returns jsonb
language sql stable
as $$
  select to_jsonb(c) || jsonb_build_object(
           'prospects', coalesce((select jsonb_agg(to_jsonb(p) order by p.created_at desc, p.prospect_id)
                                    from (select * from prospects p
                                           where p.tenant_id = c.tenant_id and p.customer_id = c.customer_id
                                           order by p.created_at desc, p.prospect_id limit 100) p), '[]'::jsonb),
           'leads', coalesce((select jsonb_agg(to_jsonb(l) order by l.created_at desc, l.lead_id)
                                from (select * from leads l
                                       where l.tenant_id = c.tenant_id and l.customer_id = c.customer_id
                                       order by l.created_at desc, l.lead_id limit 100) l), '[]'::jsonb),
           'invoices', coalesce((select jsonb_agg(to_jsonb(i) order by i.issue_date desc, i.created_at desc, i.invoice_id)
                                   from (select * from v_invoices i
                                          where i.tenant_id = c.tenant_id and i.customer_id = c.customer_id
                                          order by i.issue_date desc, i.created_at desc, i.invoice_id limit 100) i),
                                '[]'::jsonb),
           'documents', coalesce((select jsonb_agg(jsonb_build_object(
                                          'document_id', d.document_id, 'object_id', d.object_id,
                                          'file_name', o.file_name, 'content_type', o.content_type,
                                          'size_bytes', o.size_bytes, 'sha256', o.sha256,
                                          'created_by', d.created_by, 'created_at', d.created_at)
                                        order by d.created_at desc, d.document_id)
                                    from customer_documents d
                                    join objects o on o.tenant_id = d.tenant_id and o.object_id = d.object_id
                                   where d.tenant_id = c.tenant_id and d.customer_id = c.customer_id), '[]'::jsonb),
           'lookalikes', customer_lookalikes_of(c.customer_id))
    from customers c
   where c.tenant_id = bizos.tenant_id() and c.customer_id = customer_detail.customer_id
$$;
select pin_search_path('customer_detail(uuid)');
grant execute on function customer_detail(uuid) to bizos_authenticated;
comment on function customer_detail(uuid) is
  'A customer with its prospects, leads, invoices (v_invoices), documents and look-alikes, each as the caller may read them; NULL when the caller may not read the customer.';

-- customer_document_add(customer_id, object_id) -> {document_id, customer_id, object_id}
-- POST /api/customers/{id}/documents: attaches the caller's upload (bucket
-- customer-documents) to a customer they may read.
create or replace function customer_document_add(customer_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  perform require_permission('customer.document');
  if not exists (select 1 from customers c
                  where c.tenant_id = v_tenant and c.customer_id = customer_document_add.customer_id) then
    raise exception using errcode = 'P0002', column = 'customer_id',
      message = format('customer_id: no customer %s', customer_document_add.customer_id);
  end if;
  insert into customer_documents (tenant_id, customer_id, object_id)
  values (v_tenant, customer_document_add.customer_id, customer_document_add.object_id)
  returning document_id into v_id;
  return jsonb_build_object('document_id', v_id, 'customer_id', customer_document_add.customer_id,
                            'object_id', customer_document_add.object_id);
end
$$;
grant execute on function customer_document_add(uuid, uuid) to bizos_authenticated;
comment on function customer_document_add(uuid, uuid) is
  'Attaches the caller''s upload (bucket customer-documents) to a customer they may read (customer.document).';

-- customer_update(customer_id, payload {company_name?, npwp?, email?,
--   phone?, address?, city?, payment_terms_days?}) -> the customer.
-- PATCH /api/customers/{id}: only the keys present change; null clears an
-- optional field (company_name is required). Who may change a customer is
-- customer_editable (the rule of the customers update policy).
-- The dedup keys stay unique in the dedup's sense (customer_dedup): no
-- other customer may hold the new NPWP, nor the new e-mail, phone or
-- company name where one of the two has no NPWP (the dedup would match
-- either). A key is checked when it changes, and every key when the NPWP
-- changes (with it, what the others match changes). A conflict is 23505
-- naming the field, and the other customer when the caller may read it,
-- "another customer" otherwise. The new keys are taken under
-- customer_dedup_lock first, so a create of the same key waits for this
-- change (and the other way round).
-- Security definer: the conflict check must see customers the caller may
-- not read; it shows nothing of them but that the key is taken.
create or replace function customer_update(customer_id uuid, payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  c customers;
  n_npwp text;
  n_email text;
  n_phone text;
  n_company text;
  v_field text;
  v_label text;
  v_other uuid;
  v_other_name text;
  v_npwp_changed boolean;
  v_keys_changed boolean;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  perform payload_check(payload, '{"company_name": "text", "npwp": "text", "email": "text", "phone": "text", "address": "text", "city": "text", "payment_terms_days": "integer"}');
  if payload = '{}' then
    perform raise_field('payload', 'nothing to change');
  end if;
  if not may_read_customer(customer_update.customer_id) then
    raise exception using errcode = 'P0002', column = 'customer_id',
      message = format('customer_id: no customer %s', customer_update.customer_id);
  end if;
  if not customer_editable(customer_update.customer_id) then
    raise exception using errcode = '42501', message = 'you may not change this customer';
  end if;

  -- The new values first, all checked before anything is written. Twice:
  -- the keys the change gives the customer are locked before its row, in
  -- the order of customer_dedup (keys, then the row it enriches), so the
  -- two never wait for each other crosswise; then the values again over
  -- the locked row.
  for v_pass in 1..2 loop
  if v_pass = 1 then
    select * into c from customers x where x.tenant_id = v_tenant and x.customer_id = customer_update.customer_id;
  else
    select * into c from customers x where x.tenant_id = v_tenant and x.customer_id = customer_update.customer_id
       for update;
  end if;
  if not found then
    raise exception using errcode = 'P0002', column = 'customer_id',
      message = format('customer_id: no customer %s', customer_update.customer_id);
  end if;
  if payload ? 'company_name' then
    c.company_name := payload_text(payload, 'company_name', true, 200);
    if bizos.norm_company(c.company_name) is null then
      perform raise_field('company_name', 'needs letters or digits');
    end if;
  end if;
  if payload ? 'npwp' then
    c.npwp := payload_text(payload, 'npwp', false, 40);
    if c.npwp is not null and bizos.norm_npwp(c.npwp) is null then
      perform raise_field('npwp', format('%L is not a valid NPWP (15 digits, or 16 digits for the new format)', c.npwp));
    end if;
  end if;
  if payload ? 'email' then
    c.email := payload_text(payload, 'email', false, 320);
    if c.email is not null and bizos.norm_email(c.email) is null then
      perform raise_field('email', format('%L is not a valid e-mail address', c.email));
    end if;
  end if;
  if payload ? 'phone' then
    c.phone := payload_text(payload, 'phone', false, 50);
    if c.phone is not null and bizos.norm_phone(c.phone) is null then
      perform raise_field('phone', format('%L is not a valid Indonesian phone number', c.phone));
    end if;
  end if;
  if payload ? 'address' then
    c.address := payload_text(payload, 'address', false, 500);
  end if;
  if payload ? 'city' then
    c.city := payload_text(payload, 'city', false, 100);
  end if;
  if payload ? 'payment_terms_days' then
    c.payment_terms_days := payload_integer(payload, 'payment_terms_days');
    if c.payment_terms_days not between 0 and 365 then
      perform raise_field('payment_terms_days', 'between 0 and 365 days');
    end if;
  end if;
  n_npwp := bizos.norm_npwp(c.npwp);
  n_email := bizos.norm_email(c.email);
  n_phone := bizos.norm_phone(c.phone);
  n_company := bizos.norm_company(c.company_name);
  v_npwp_changed := n_npwp is distinct from c.npwp_norm;
  v_keys_changed := v_npwp_changed or n_email is distinct from c.email_norm
                    or n_phone is distinct from c.phone_norm or n_company is distinct from c.company_norm;
  -- The keys that change, serialised with every create of the same key.
  if v_pass = 1 and v_keys_changed then
    perform customer_dedup_lock(v_tenant, customer_dedup_keys(n_npwp, n_email, n_phone, n_company));
  end if;
  end loop;

  if v_keys_changed then
    for v_field, v_label in
      select f, l from (values (1, 'npwp', 'NPWP'), (2, 'email', 'e-mail address'),
                               (3, 'phone', 'phone number'), (4, 'company_name', 'company name')) k(o, f, l)
       order by o
    loop
      v_other := null;
      if v_field = 'npwp' and v_npwp_changed and n_npwp is not null then
        select o.customer_id, o.company_name into v_other, v_other_name from customers o
         where o.tenant_id = v_tenant and o.npwp_norm = n_npwp and o.customer_id <> c.customer_id;
      elsif v_field = 'email' and n_email is not null and (v_npwp_changed or n_email is distinct from c.email_norm) then
        select o.customer_id, o.company_name into v_other, v_other_name from customers o
         where o.tenant_id = v_tenant and o.email_norm = n_email and o.customer_id <> c.customer_id
           and (n_npwp is null or o.npwp_norm is null)
         order by o.created_at limit 1;
      elsif v_field = 'phone' and n_phone is not null and (v_npwp_changed or n_phone is distinct from c.phone_norm) then
        select o.customer_id, o.company_name into v_other, v_other_name from customers o
         where o.tenant_id = v_tenant and o.phone_norm = n_phone and o.customer_id <> c.customer_id
           and (n_npwp is null or o.npwp_norm is null)
         order by o.created_at limit 1;
      elsif v_field = 'company_name' and (v_npwp_changed or n_company is distinct from c.company_norm) then
        select o.customer_id, o.company_name into v_other, v_other_name from customers o
         where o.tenant_id = v_tenant and o.company_norm = n_company and o.customer_id <> c.customer_id
           and (n_npwp is null or o.npwp_norm is null)
         order by o.created_at limit 1;
      end if;
      if v_other is not null then
        if may_read_customer(v_other) then
          raise exception using errcode = '23505', column = v_field,
            message = format('%s: customer %s (%s) already has this %s; merge the two instead (POST /api/customers/{id}/merge)',
                             v_field, v_other, v_other_name, v_label);
        else
          raise exception using errcode = '23505', column = v_field,
            message = format('%s: another customer already has this %s', v_field, v_label);
        end if;
      end if;
    end loop;
  end if;

  update customers x
     set company_name = c.company_name, npwp = c.npwp, email = c.email, phone = c.phone,
         address = c.address, city = c.city, payment_terms_days = c.payment_terms_days
   where x.tenant_id = v_tenant and x.customer_id = customer_update.customer_id
  returning * into c;
  if not found then
    raise exception using errcode = 'P0002', column = 'customer_id',
      message = format('customer_id: no customer %s', customer_update.customer_id);
  end if;
  -- A new name may resemble other customers: checked again after commit.
  if payload ? 'company_name' then
    perform job_insert(v_tenant, null, 'customer.lookalikes',
                       jsonb_build_object('customer_ids', jsonb_build_array(c.customer_id)), null, 0, null);
  end if;
  return to_jsonb(c);
end
$$;
select pin_search_path('customer_update(uuid, jsonb)');
revoke execute on function customer_update(uuid, jsonb) from public;
grant execute on function customer_update(uuid, jsonb) to bizos_authenticated;
comment on function customer_update(uuid, jsonb) is
  'Changes a customer the caller may edit (customer_editable); the dedup keys stay unique (23505 naming the field, and the other customer when the caller may read it).';

-- The references to customers that customer_merge moves, one row per
-- foreign key (table and its customer column) and what the merge does
-- with it:
--   move    the rows now point at the surviving customer;
--   prospects  moved, but a duplicate's prospect whose owner already has
--           one of the survivor (one prospect per customer and owner) is
--           folded into it: its leads, activities and stage history move
--           to the survivor's prospect, then it is deleted;
--   derived rows worked out from the customer (RFM scores, look-alikes):
--           dropped with the duplicate and worked out again (the
--           look-alikes of the survivor are checked again after commit,
--           RFM at its next run).
-- customer_merge refuses to run while a foreign key to customers is not
-- listed here (a new table would otherwise lose its rows to a cascade or
-- stop the merge half-way), and tests/tests/suite/crm/merge.rs fails.
create or replace function customer_merge_references()
returns table (table_name text, column_name text, action text)
language sql immutable
as $$
  values ('prospects', 'customer_id', 'prospects'),
         ('leads', 'customer_id', 'move'),
         ('sales_activities', 'customer_id', 'move'),
         ('tickets', 'related_customer_id', 'move'),
         ('invoices', 'customer_id', 'move'),
         ('credit_notes', 'customer_id', 'move'),
         ('customer_documents', 'customer_id', 'move'),
         ('customer_merges', 'customer_id', 'move'),
         ('rfm_scores', 'customer_id', 'derived'),
         ('customer_lookalikes', 'customer_id', 'derived'),
         ('customer_lookalikes', 'lookalike_id', 'derived'),
         ('customer_lookalike_checks', 'customer_id', 'derived')
$$;
grant execute on function customer_merge_references() to bizos_authenticated;
comment on function customer_merge_references() is
  'The foreign keys to customers that customer_merge handles (table, column) and how: move, prospects (folded per owner) or derived (dropped and worked out again).';

-- The foreign keys to customers of this schema that
-- customer_merge_references does not list (table.column).
create or replace function customer_merge_unhandled() returns text[]
language sql stable
as $$
  select coalesce(array_agg(x.ref order by x.ref), '{}')
    from (select cl.relname || '.' || a.attname as ref, cl.relname::text as tbl, a.attname::text as col
            from pg_catalog.pg_constraint k
            join pg_catalog.pg_class cl on cl.oid = k.conrelid
            join pg_catalog.pg_attribute a on a.attrelid = k.conrelid and a.attnum = any (k.conkey)
           where k.contype = 'f'
             and k.confrelid = 'customers'::regclass
             and a.attname <> 'tenant_id') x
   where not exists (select 1 from customer_merge_references() r
                      where r.table_name = x.tbl and r.column_name = x.col)
$$;
select pin_search_path('customer_merge_unhandled()');
grant execute on function customer_merge_unhandled() to bizos_authenticated;
comment on function customer_merge_unhandled() is
  'Foreign keys to customers (table.column) that customer_merge does not handle; it refuses to merge while there is one.';

-- customer_merge(customer_id, duplicate_id) -> {customer_id,
--   merged_customer_id, merge_id, moved}
-- POST /api/customers/{id}/merge {"duplicate_id"}: the customer of the
-- path survives; the duplicate's prospects, leads, activities, tickets,
-- invoices (their numbers untouched), documents and earlier merges move to
-- it (customer_merge_references), the survivor takes the duplicate's NPWP,
-- e-mail, phone, address, city and payment terms where it has none, and
-- the duplicate is deleted (audited with its last row), its row and what
-- moved kept in customer_merges under the survivor. The dedup keys stay
-- unique: the survivor takes only keys the duplicate held, and two
-- customers with different NPWPs (two legal entities) are not merged.
-- Who: whoever may change both customers (customer_editable: super admins,
-- marketing managers, sales roles for customers their team owns a
-- prospect of; directors write nothing). Both rows are locked in the order
-- of their ids, so two merges of the same pair, crosswise or not, wait for
-- each other instead of deadlocking; the second finds its duplicate gone.
-- Security definer: the moves touch rows the caller may not read (a
-- salesperson's customer's invoices).
create or replace function customer_merge(customer_id uuid, duplicate_id uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_keep uuid := customer_merge.customer_id;
  v_dup uuid := customer_merge.duplicate_id;
  s customers;
  d customers;
  v_unhandled text[];
  v_moved jsonb := '{}';
  v_merge uuid;
  v_merge_count integer;
  n integer;
  r record;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if v_dup is null then
    perform raise_field('duplicate_id', 'is required');
  end if;
  if v_dup = v_keep then
    perform raise_field('duplicate_id', 'a customer is not merged into itself');
  end if;
  if not may_read_customer(v_keep) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = format('customer_id: no customer %s', v_keep);
  end if;
  if not may_read_customer(v_dup) then
    raise exception using errcode = 'P0002', column = 'duplicate_id', message = format('duplicate_id: no customer %s', v_dup);
  end if;
  if not (customer_editable(v_keep) and customer_editable(v_dup)) then
    raise exception using errcode = '42501', message = 'you may not change both customers';
  end if;
  v_unhandled := customer_merge_unhandled();
  if cardinality(v_unhandled) > 0 then
    raise exception using errcode = 'XX000',
      message = format('customer_merge does not handle the foreign keys %s to customers (customer_merge_references)', v_unhandled);
  end if;

  -- Both rows, in the order of their ids.
  for r in
    select x.customer_id from customers x
     where x.tenant_id = v_tenant and x.customer_id in (v_keep, v_dup)
     order by x.customer_id
       for update
  loop
  end loop;
  select * into s from customers x where x.tenant_id = v_tenant and x.customer_id = v_keep;
  if not found then
    raise exception using errcode = 'P0002', column = 'customer_id', message = format('customer_id: no customer %s', v_keep);
  end if;
  select * into d from customers x where x.tenant_id = v_tenant and x.customer_id = v_dup;
  if not found then
    raise exception using errcode = 'P0002', column = 'duplicate_id', message = format('duplicate_id: no customer %s', v_dup);
  end if;
  if s.npwp_norm is not null and d.npwp_norm is not null and s.npwp_norm <> d.npwp_norm then
    perform raise_field('duplicate_id', format(
      'the two customers have different NPWPs (%s and %s): two legal entities are not merged; correct the wrong NPWP first (PATCH /api/customers/{id})',
      s.npwp, d.npwp));
  end if;

  -- The merge is recorded first: the invoices' trigger lets an issued
  -- invoice change customer only along a recorded merge.
  insert into customer_merges (tenant_id, customer_id, merged_customer_id, merged_customer, moved)
  values (v_tenant, v_keep, v_dup, to_jsonb(d), '{}')
  returning merge_id into v_merge;

  -- Prospects: one per customer and owner; a duplicate's prospect whose
  -- owner (or no owner) the survivor already has is folded into that one.
  n := 0;
  for r in
    select p.prospect_id as dup_prospect, k.prospect_id as keep_prospect
      from prospects p
      join prospects k on k.tenant_id = p.tenant_id and k.customer_id = v_keep
                      and k.owner_user_id is not distinct from p.owner_user_id
     where p.tenant_id = v_tenant and p.customer_id = v_dup
     order by p.prospect_id
  loop
    update leads x set prospect_id = r.keep_prospect
     where x.tenant_id = v_tenant and x.prospect_id = r.dup_prospect;
    update sales_activities x set prospect_id = r.keep_prospect
     where x.tenant_id = v_tenant and x.prospect_id = r.dup_prospect;
    update prospect_stage_history x set prospect_id = r.keep_prospect
     where x.tenant_id = v_tenant and x.prospect_id = r.dup_prospect;
    delete from prospects x where x.tenant_id = v_tenant and x.prospect_id = r.dup_prospect;
    n := n + 1;
  end loop;
  update prospects x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics v_merge_count = row_count;
  v_moved := v_moved || jsonb_build_object('prospects', v_merge_count + n, 'prospects_folded', n);

  update leads x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('leads', n);
  update sales_activities x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('sales_activities', n);
  update tickets x set related_customer_id = v_keep where x.tenant_id = v_tenant and x.related_customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('tickets', n);
  update invoices x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('invoices', n);
  update credit_notes x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('credit_notes', n);
  update customer_documents x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('customer_documents', n);
  update customer_merges x set customer_id = v_keep where x.tenant_id = v_tenant and x.customer_id = v_dup;
  get diagnostics n = row_count;
  v_moved := v_moved || jsonb_build_object('customer_merges', n);
  update customer_merges x set moved = v_moved where x.tenant_id = v_tenant and x.merge_id = v_merge;

  -- The duplicate goes (its derived rows with it), then the survivor takes
  -- what it lacks: the duplicate's keys are free by then.
  delete from customers x where x.tenant_id = v_tenant and x.customer_id = v_dup;
  s.npwp := coalesce(s.npwp, d.npwp);
  s.email := coalesce(s.email, d.email);
  s.phone := coalesce(s.phone, d.phone);
  s.address := coalesce(s.address, d.address);
  s.city := coalesce(s.city, d.city);
  s.payment_terms_days := coalesce(s.payment_terms_days, d.payment_terms_days);
  update customers x
     set npwp = s.npwp, email = s.email, phone = s.phone, address = s.address, city = s.city,
         payment_terms_days = s.payment_terms_days
   where x.tenant_id = v_tenant and x.customer_id = v_keep
     and (x.npwp, x.email, x.phone, x.address, x.city, x.payment_terms_days)
         is distinct from (s.npwp, s.email, s.phone, s.address, s.city, s.payment_terms_days);

  perform job_insert(v_tenant, null, 'customer.lookalikes',
                     jsonb_build_object('customer_ids', jsonb_build_array(v_keep)), null, 0, null);
  return jsonb_build_object('customer_id', v_keep, 'merged_customer_id', v_dup, 'merge_id', v_merge,
                            'moved', v_moved);
end
$$;
select pin_search_path('customer_merge(uuid, uuid)');
revoke execute on function customer_merge(uuid, uuid) from public;
grant execute on function customer_merge(uuid, uuid) to bizos_authenticated;
comment on function customer_merge(uuid, uuid) is
  'Merges duplicate_id into customer_id (who may change both): everything pointing at the duplicate moves, the survivor fills its gaps, the duplicate is deleted and kept in customer_merges.';

-- customer_merges_of(customer_id) -> {items: [{merge_id, merged_customer_id,
--   company_name, merged_by, merged_at, moved}]}: the customers merged into
-- this one (GET /api/customers/{id}/merges), newest first; their audit
-- history stays under their own ids (GET /api/audit?table=customers&record=).
-- NULL when the caller may not read the customer.
create or replace function customer_merges_of(customer_id uuid) returns jsonb
language sql stable
as $$
  select jsonb_build_object('items', coalesce((select jsonb_agg(jsonb_build_object(
                            'merge_id', m.merge_id, 'merged_customer_id', m.merged_customer_id,
                            'company_name', m.merged_customer ->> 'company_name',
                            'merged_by', m.created_by, 'merged_at', m.created_at, 'moved', m.moved)
                          order by m.created_at desc, m.merge_id)
                     from customer_merges m
                    where m.tenant_id = c.tenant_id and m.customer_id = c.customer_id), '[]'::jsonb))
    from customers c
   where c.tenant_id = bizos.tenant_id() and c.customer_id = customer_merges_of.customer_id
$$;
select pin_search_path('customer_merges_of(uuid)');
grant execute on function customer_merges_of(uuid) to bizos_authenticated;
comment on function customer_merges_of(uuid) is
  'The customers merged into this one (customer_merges), newest first; NULL when the caller may not read the customer.';
