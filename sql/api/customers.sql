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
