-- C3: the audit log. Written only by bizos.audit_trigger() (as the extension
-- owner), read by the database owner and by callers of their own tenant;
-- nobody but the owner (a superuser) can update or delete entries, and
-- bizos.audit_verify() finds any entry that was.
--
-- Each tenant has 8 chains (`chain`); a writer takes a chain no other open
-- transaction holds, so tenants never wait on each other and writers within
-- a tenant rarely do.
create table bizos.audit_log (
  tenant_id  uuid        not null,
  chain      smallint    not null,
  seq        bigint      not null,
  table_name text        not null,
  record_key jsonb       not null,
  action     text        not null,
  actor      uuid,
  db_role    text        not null,
  txid       bigint      not null,
  at         timestamptz not null,
  before     jsonb,
  after      jsonb,
  prev_hash  bytea       not null,
  hash       bytea       not null,
  request_id text,
  constraint audit_log_pkey primary key (tenant_id, chain, seq),
  constraint audit_log_action_check check (action in ('INSERT', 'UPDATE', 'DELETE'))
);
comment on table bizos.audit_log is 'Tamper-evident audit trail (C3): who changed what and when, hash-chained per tenant.';
comment on column bizos.audit_log.actor is 'bizos.uid() of the request, NULL outside a request';
comment on column bizos.audit_log.db_role is 'The login (session) role, e.g. bizos_app for requests through the BFF';
comment on column bizos.audit_log.before is 'Row before the change; for UPDATE only the changed columns plus the key';
comment on column bizos.audit_log.after is 'Row after the change; for UPDATE only the changed columns plus the key';
comment on column bizos.audit_log.request_id is 'The setting request.id of the writing transaction (the BFF: x-request-id), NULL when unset; hashed when present';

create index audit_log_record_idx on bizos.audit_log (tenant_id, table_name, record_key);

create table bizos.audit_heads (
  tenant_id uuid     not null,
  chain     smallint not null,
  seq       bigint   not null,
  hash      bytea    not null,
  constraint audit_heads_pkey primary key (tenant_id, chain)
);

alter table bizos.audit_log enable row level security;
alter table bizos.audit_heads enable row level security;

create policy "callers read the audit log of their tenant"
  on bizos.audit_log for select to public
  using (tenant_id = (select bizos.tenant_id()));

create policy "the database owner reads the whole audit log"
  on bizos.audit_log for select to pg_database_owner
  using (true);

create policy "the database owner reads the chain heads"
  on bizos.audit_heads for select to pg_database_owner
  using (true);

grant select on bizos.audit_log, bizos.audit_heads to pg_database_owner;

select pg_catalog.pg_extension_config_dump('bizos.audit_log', '');
select pg_catalog.pg_extension_config_dump('bizos.audit_heads', '');

-- History of one record, oldest first. Invoker's rights: RLS applies.
create function bizos.audit_history(rel regclass, key jsonb)
returns setof bizos.audit_log
language sql stable
set search_path = pg_catalog, pg_temp
as $$
  select a.*
    from bizos.audit_log a
   where a.table_name = rel::text
     and a.record_key = key
   order by a.at, a.txid, a.chain, a.seq
$$;

-- Attaches the audit trigger; the table needs a tenant_id column and a
-- primary key (the record key of every entry).
create function bizos.enable_audit(rel regclass)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  pk text[];
begin
  if not exists (select 1 from pg_attribute
                  where attrelid = rel and attname = 'tenant_id' and not attisdropped) then
    raise exception using errcode = '42703',
      message = format('%s has no tenant_id column; audited tables must carry one', rel);
  end if;
  select array_agg(a.attname::text order by k.ord)
    into pk
    from pg_index i
    cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
   where i.indrelid = rel and i.indisprimary;
  if pk is null then
    raise exception using errcode = '42P16',
      message = format('%s has no primary key; audited tables need one', rel);
  end if;
  execute format('drop trigger if exists bizos_audit on %s', rel);
  execute format(
    'create trigger bizos_audit after insert or update or delete on %s
       for each row execute function bizos.audit_trigger(%s)',
    rel, (select string_agg(quote_literal(c), ', ') from unnest(pk) c));
end
$$;

create function bizos.disable_audit(rel regclass)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('drop trigger if exists bizos_audit on %s', rel);
end
$$;
