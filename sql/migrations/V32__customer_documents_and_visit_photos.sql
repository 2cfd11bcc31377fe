-- Customer documents and visit photos as stored objects, and the kinds of
-- sales activities as a vocabulary (issue 19: every action of seed 004's
-- users over HTTP).
--
-- 1. activity_types: the vocabulary of sales_activities.activity_type (it
--    was an in (...) check); `manual` says which kinds users log by hand
--    (the others are written by the database: stage changes, RFQs, lead
--    assignments).
-- 2. sales_activities.photo_object_id: a visit's photo is an object of
--    bucket prospect-evidence (uploaded by the activity's writer); the old
--    photo_bucket/photo_object_key columns follow from it (a trigger in
--    crm.sql, attached there because its function lives there).
-- 3. customer_documents: objects of bucket customer-documents attached to
--    a customer, visible with the customer.
-- 4. objects: visit photos and customer documents are readable by whoever
--    reads the activity or the customer (the select policy gains two
--    branches; the subqueries run under those tables' own RLS).
-- 5. the permission customer.document (attach documents to customers).

-- ---------------------------------------------------------------------------
-- 1. activity_types
-- ---------------------------------------------------------------------------

create table activity_types (
  code        text     not null,
  position    smallint not null,
  description text,
  -- Logged by users (POST /api/activities); false: written by the
  -- database when something happens.
  manual      boolean  not null,
  constraint activity_types_pkey primary key (code),
  constraint activity_types_position_key unique (position),
  constraint activity_types_code_check check (code ~ '^[a-z][a-z0-9_]{0,29}$')
);
comment on table activity_types is
  'Vocabulary: the kinds of sales activities (sales_activities.activity_type; lower case); manual ones are logged by users, the others derived by the database.';
insert into activity_types (code, position, description, manual) values
  ('visit',          1, 'a visit to the customer (needs a photo and the GPS position)', true),
  ('call',           2, 'a phone call',                                                 true),
  ('meeting',        3, 'a meeting (online or at the office)',                          true),
  ('email',          4, 'an e-mail',                                                    true),
  ('whatsapp',       5, 'a WhatsApp conversation',                                      true),
  ('note',           6, 'a note',                                                       true),
  ('stage_change',   7, 'the prospect moved to another stage (derived)',                false),
  ('rfq_created',    8, 'an RFQ ticket was created from a lead (derived)',              false),
  ('lead_assigned',  9, 'a lead was assigned to the owner (derived)',                   false);
alter table activity_types enable row level security;
create policy "members read the vocabulary" on activity_types for select to bizos_authenticated using (true);
grant select on activity_types to bizos_authenticated;

alter table sales_activities
  drop constraint sales_activities_activity_type_check,
  add constraint sales_activities_activity_type_fkey foreign key (activity_type) references activity_types (code);

-- ---------------------------------------------------------------------------
-- 2. visit photos
-- ---------------------------------------------------------------------------

alter table sales_activities
  add column photo_object_id uuid,
  add constraint sales_activities_photo_object_id_fkey foreign key (tenant_id, photo_object_id)
    references objects (tenant_id, object_id),
  -- One photo proves one activity.
  add constraint sales_activities_photo_object_id_key unique (tenant_id, photo_object_id);
comment on column sales_activities.photo_object_id is
  'The photo (an object of bucket prospect-evidence uploaded by the writer); photo_bucket and photo_object_key follow from it.';
grant update (photo_object_id) on sales_activities to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- 3. customer documents
-- ---------------------------------------------------------------------------

create table customer_documents (
  tenant_id   uuid        not null,
  document_id uuid        not null default gen_random_uuid(),
  customer_id uuid        not null,
  object_id   uuid        not null,
  created_by  uuid        default bizos.uid(),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint customer_documents_pkey primary key (tenant_id, document_id),
  constraint customer_documents_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint customer_documents_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint customer_documents_object_id_fkey foreign key (tenant_id, object_id)
    references objects (tenant_id, object_id),
  constraint customer_documents_object_id_key unique (tenant_id, object_id)
);
comment on table customer_documents is
  'Files of a customer (objects in bucket customer-documents: contracts, NPWP cards); visible with the customer.';
create index customer_documents_customer_id_idx on customer_documents (tenant_id, customer_id);
create index customer_documents_created_by_idx on customer_documents (tenant_id, created_by);

create trigger customer_documents_stamp_timestamps before insert or update on customer_documents
  for each row execute function stamp_timestamps();
create trigger customer_documents_keep_created_by before insert or update on customer_documents
  for each row execute function keep_created_by();
create trigger customer_documents_require_own_object before insert on customer_documents
  for each row execute function require_own_object('customer-documents');
select bizos.enable_audit('customer_documents');

alter table customer_documents enable row level security;
-- The subqueries on customers run under the customers policy
-- (customer_readable): a document is visible exactly with its customer.
create policy "documents are visible with their customer"
  on customer_documents for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from customers c
                      where c.tenant_id = customer_documents.tenant_id
                        and c.customer_id = customer_documents.customer_id));
create policy "holders of customer.document attach documents to customers they read"
  on customer_documents for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id())
              and created_by = (select bizos.uid())
              and (select has_permission('customer.document'))
              and exists (select 1 from customers c
                           where c.tenant_id = customer_documents.tenant_id
                             and c.customer_id = customer_documents.customer_id));
create policy "uploaders and super admins remove customer documents"
  on customer_documents for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid()) or (select bizos.app_role()) = 'super_admin'));
grant select, delete on customer_documents to bizos_authenticated;
grant insert (tenant_id, document_id, customer_id, object_id) on customer_documents to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- 4. who reads a file
-- ---------------------------------------------------------------------------

drop policy "files are visible to their uploader, super admins and through the rows that use them" on objects;
create policy "files are visible to their uploader, super admins and through the rows that use them"
  on objects for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) = 'super_admin'
              or exists (select 1 from ticket_attachments a
                          where a.tenant_id = objects.tenant_id and a.object_id = objects.object_id)
              or exists (select 1 from kpi_evidence e
                          where e.tenant_id = objects.tenant_id and e.object_id = objects.object_id)
              or (bucket = 'knowledge'
                  and exists (select 1 from kb_documents d
                               where d.tenant_id = objects.tenant_id
                                 and (d.object_id = objects.object_id or d.ready_object_id = objects.object_id)))
              or (bucket = 'prospect-evidence'
                  and exists (select 1 from sales_activities s
                               where s.tenant_id = objects.tenant_id and s.photo_object_id = objects.object_id))
              or (bucket = 'customer-documents'
                  and exists (select 1 from customer_documents c
                               where c.tenant_id = objects.tenant_id and c.object_id = objects.object_id))));

-- ---------------------------------------------------------------------------
-- 5. permission
-- ---------------------------------------------------------------------------

-- Who attaches documents to customers (new tenants get it from
-- default_role_permissions(), platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'customer.document'
  from tenants t
 cross join (values ('super_admin'), ('marketing_manager'), ('sales_manager'), ('salesperson'), ('finance'))
       as r (app_role)
on conflict do nothing;
