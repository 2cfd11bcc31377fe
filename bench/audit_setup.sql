-- scripts/bench primitives, benchmark 1: four tables of one shape.
--   bench_plain    no trigger
--   bench_bizos    bizos.enable_audit (hash-chained, per-tenant chains)
--   bench_plpgsql  a supa_audit-style PL/pgSQL trigger: to_jsonb(NEW/OLD)
--                  into a plain log table with a bigserial key (no chain)
--   bench_chained  a PL/pgSQL trigger doing what bizos.audit_trigger does
--                  (below): the same entry, hash and chain, its own copy of
--                  bizos.audit_log and bizos.audit_heads
-- Each table is prefilled with 50,000 rows over 8 tenants (row id g belongs
-- to tenant g % 8 + 1, which the update script relies on) before the
-- triggers are attached, so all four start with the same content.
\set ON_ERROR_STOP on
set client_min_messages = warning;

create function bench_tenant(n int) returns uuid
language sql immutable parallel safe
return ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid;

do $$
declare
  t text;
begin
  foreach t in array array['bench_plain', 'bench_bizos', 'bench_plpgsql', 'bench_chained'] loop
    execute format($f$
      create table %1$I (
        tenant_id uuid          not null,
        id        bigint        generated always as identity,
        name      text          not null,
        amount    numeric(14,2) not null,
        due_at    timestamptz   not null,
        attrs     jsonb         not null,
        status    text          not null,
        owner_id  uuid          not null,
        constraint %1$s_pkey primary key (tenant_id, id)
      )$f$, t);
    execute format($f$
      insert into %1$I (tenant_id, id, name, amount, due_at, attrs, status, owner_id)
      overriding system value
      select bench_tenant(g %% 8 + 1), g,
             'Pengadaan server rak ' || g,
             (g * 7919 %% 100000000) / 100.0,
             timestamptz '2026-01-01' + make_interval(days => g %% 365),
             jsonb_build_object('source', 'web', 'score', g %% 1000,
                                'tags', jsonb_build_array('b2b', 'jakarta')),
             (array['open', 'qualified', 'won', 'lost'])[g %% 4 + 1],
             bench_tenant(g %% 1000 + 100)
        from generate_series(1, 50000) g$f$, t);
    perform setval(pg_get_serial_sequence(t, 'id'), 50000);
  end loop;
end
$$;

-- (b) the extension's audit trigger
select bizos.enable_audit('bench_bizos');

-- (c) supa_audit style: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW
create table bench_plpgsql_log (
  id         bigserial   primary key,
  table_name text        not null,
  op         text        not null,
  txid       bigint      not null,
  ts         timestamptz not null,
  record     jsonb,
  old_record jsonb
);

create function bench_plpgsql_audit() returns trigger
language plpgsql
as $$
begin
  insert into bench_plpgsql_log (table_name, op, txid, ts, record, old_record)
  values (tg_table_schema || '.' || tg_table_name, tg_op, txid_current(), now(),
          case when tg_op <> 'DELETE' then to_jsonb(new) end,
          case when tg_op <> 'INSERT' then to_jsonb(old) end);
  return null;
end
$$;

create trigger bench_plpgsql_audit after insert or update or delete on bench_plpgsql
  for each row execute function bench_plpgsql_audit();

-- (d) what bizos.audit_trigger does (extension/src/audit.rs,
-- crates/core/src/audit.rs), written in PL/pgSQL the way one would without
-- the extension: the yardstick for "the same work". Per audited row:
--   * the record key (the primary key columns, named by the trigger's
--     arguments as bizos.enable_audit passes them) and the row's images as
--     jsonb: the whole row for INSERT and DELETE, the changed columns plus
--     the key before and after for UPDATE; an UPDATE that changed nothing
--     writes no entry;
--   * the actor (claim `sub`), the request id (setting request.id, at most
--     200 characters, NULL when empty), the session role, the transaction
--     id and the statement's start;
--   * one of the tenant's 8 chains, held for the transaction: a
--     transaction-level exclusive advisory lock, tried without waiting from
--     chain (backend pid % 8) on, queued on that chain when all 8 are taken
--     (the extension takes its lock the same way, in the lock manager);
--   * the chain's head (creating the tenant's 8 heads once), the entry's
--     sha256 over the previous hash and the same length-prefixed fields
--     (bench_audit_entry_hash below gives the extension's hashes: the run
--     checks it on every bizos.audit_log entry), the entry in a copy of
--     bizos.audit_log (same columns, key, record-key index and check), and
--     the head moved on.
-- Differences, none of them work the trigger skips: the images come from
-- to_jsonb (timestamps in JSON's ISO form, where the extension stores the
-- type's output text; otherwise the same values); a changed column is one
-- whose jsonb value differs (the extension compares the stored bytes); the
-- head is written with each entry (the extension writes it once, just
-- before commit: the same for one row a transaction, more for many);
-- malformed claims raise (the extension takes them as no actor). It runs as
-- the caller, without SECURITY DEFINER or a pinned search_path (the
-- cheapest form; a production trigger that keeps callers away from its
-- log would need both).

-- A field of the hash: its length as 8 bytes big-endian, then its bytes;
-- NULL as 8 bytes 0xff (bizos_core::audit::field).
create function bench_audit_field(b bytea) returns bytea
language sql immutable parallel safe
return case when b is null then '\xffffffffffffffff'::bytea else int8send(length(b)::bigint) || b end;

-- bizos_core::audit::entry_hash: sha256 over the domain tag, the previous
-- hash and every field of the entry (the request id only when present).
-- Stable, not immutable: convert_to is.
create function bench_audit_entry_hash(
  prev bytea, tenant_id uuid, chain smallint, seq bigint, table_name text, record_key text,
  action text, actor uuid, db_role text, txid bigint, at timestamptz, before text, after text,
  request_id text) returns bytea
language sql stable parallel safe
return sha256(bench_audit_field('bizos-audit-v1'::bytea) || bench_audit_field(prev)
  || bench_audit_field(convert_to(tenant_id::text, 'UTF8')) || bench_audit_field(int2send(chain))
  || bench_audit_field(int8send(seq)) || bench_audit_field(convert_to(table_name, 'UTF8'))
  || bench_audit_field(convert_to(record_key, 'UTF8')) || bench_audit_field(convert_to(action, 'UTF8'))
  || bench_audit_field(convert_to(actor::text, 'UTF8')) || bench_audit_field(convert_to(db_role, 'UTF8'))
  || bench_audit_field(int8send(txid)) || bench_audit_field(timestamptz_send(at))
  || bench_audit_field(convert_to(before, 'UTF8')) || bench_audit_field(convert_to(after, 'UTF8'))
  || case when request_id is null then ''::bytea else bench_audit_field(convert_to(request_id, 'UTF8')) end);

create table bench_chained_log (like bizos.audit_log including all);
alter table bench_chained_log enable row level security;
create table bench_chained_heads (like bizos.audit_heads including all);
alter table bench_chained_heads enable row level security;

create function bench_chained_audit() returns trigger
language plpgsql
as $$
declare
  v_new jsonb;
  v_old jsonb;
  v_cur jsonb;
  v_key jsonb;
  v_before jsonb;
  v_after jsonb;
  v_tenant uuid;
  v_claims text := current_setting('request.jwt.claims', true);
  v_actor uuid;
  v_request text := left(nullif(btrim(current_setting('request.id', true)), ''), 200);
  v_setting text;
  v_held text;
  v_lock integer;
  v_offset integer;
  v_chain smallint;
  v_seq bigint;
  v_prev bytea;
  v_hash bytea;
  v_at timestamptz := statement_timestamp();
  v_txid bigint := txid_current();
  v_table text := quote_ident(tg_table_schema) || '.' || quote_ident(tg_table_name);
  i integer;
begin
  if tg_op = 'INSERT' then
    v_new := to_jsonb(new);
    v_tenant := new.tenant_id;
    v_cur := v_new;
    v_after := v_new;
  elsif tg_op = 'DELETE' then
    v_old := to_jsonb(old);
    v_tenant := old.tenant_id;
    v_cur := v_old;
    v_before := v_old;
  else
    v_new := to_jsonb(new);
    v_old := to_jsonb(old);
    if v_new = v_old then
      return null;
    end if;
    v_tenant := new.tenant_id;
    v_cur := v_new;
    select jsonb_object_agg(o.key, o.value), jsonb_object_agg(o.key, v_new -> o.key)
      into v_before, v_after
      from jsonb_each(v_old) o
     where o.key = any (tg_argv) or o.value is distinct from v_new -> o.key;
  end if;
  if v_tenant is null then
    raise exception using errcode = '23502', message = v_table || '.tenant_id is NULL; cannot audit';
  end if;
  v_key := case tg_nargs
             when 1 then jsonb_build_object(tg_argv[0], v_cur -> tg_argv[0])
             when 2 then jsonb_build_object(tg_argv[0], v_cur -> tg_argv[0], tg_argv[1], v_cur -> tg_argv[1])
             else (select jsonb_object_agg(k, v_cur -> k) from unnest(tg_argv) k) end;
  if v_claims <> '' then
    v_actor := case when v_claims::jsonb ->> 'sub' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then (v_claims::jsonb ->> 'sub')::uuid end;
  end if;

  -- The chain this transaction holds for the tenant, else take one.
  v_setting := 'bench_chained.chain_' || replace(v_tenant::text, '-', '');
  v_held := current_setting(v_setting, true);
  if v_held is null or v_held = '' then
    v_lock := hashtext(v_tenant::text);
    v_offset := pg_backend_pid() % 8;
    for i in 0 .. 7 loop
      if pg_try_advisory_xact_lock(v_lock, (v_offset + i) % 8) then
        v_chain := (v_offset + i) % 8;
        exit;
      end if;
    end loop;
    if v_chain is null then
      perform pg_advisory_xact_lock(v_lock, v_offset);
      v_chain := v_offset;
    end if;
    perform set_config(v_setting, v_chain::text, true);
  else
    v_chain := v_held::smallint;
  end if;

  -- Its head: a statement of its own, so its snapshot is taken after the
  -- lock and sees the head the previous holder committed.
  select h.seq, h.hash into v_seq, v_prev
    from public.bench_chained_heads h where h.tenant_id = v_tenant and h.chain = v_chain;
  if not found then
    insert into public.bench_chained_heads (tenant_id, chain, seq, hash)
    select v_tenant, g, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
      from generate_series(0, 7) g
    on conflict do nothing;
    v_seq := 0;
    v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  end if;
  v_seq := v_seq + 1;
  v_hash := public.bench_audit_entry_hash(v_prev, v_tenant, v_chain, v_seq, v_table, v_key::text, tg_op,
                                          v_actor, session_user, v_txid, v_at, v_before::text, v_after::text,
                                          v_request);
  insert into public.bench_chained_log (tenant_id, chain, seq, table_name, record_key, action, actor, db_role,
                                        txid, at, before, after, prev_hash, hash, request_id)
  values (v_tenant, v_chain, v_seq, v_table, v_key, tg_op, v_actor, session_user, v_txid, v_at, v_before,
          v_after, v_prev, v_hash, v_request);
  update public.bench_chained_heads set seq = v_seq, hash = v_hash
   where tenant_id = v_tenant and chain = v_chain;
  return null;
end
$$;

create trigger bench_chained_audit after insert or update or delete on bench_chained
  for each row execute function bench_chained_audit('tenant_id', 'id');

-- Checks an audit log and its heads the way bizos.audit_verify does, with
-- the hash recomputed in SQL: entries whose hash is not their fields' hash,
-- entries that do not link to the entry before them, gaps or repeats in a
-- chain's sequence, heads that are not their chain's last entry. Run on
-- bizos.audit_log it shows that bench_audit_entry_hash is the extension's
-- hash.
create function bench_audit_check(log regclass, heads regclass,
  out entries bigint, out bad_hash bigint, out bad_link bigint, out bad_seq bigint, out bad_heads bigint)
language plpgsql
as $$
begin
  execute format($q$
    select count(*),
           count(*) filter (where hash is distinct from bench_audit_entry_hash(prev_hash, tenant_id, chain, seq,
             table_name, record_key::text, action, actor, db_role, txid, at, before::text, after::text, request_id)),
           count(*) filter (where prev_hash is distinct from
             coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)),
           count(*) filter (where seq is distinct from coalesce(last_seq, 0) + 1)
      from (select l.*, lag(l.hash) over w as last_hash, lag(l.seq) over w as last_seq
              from %s l window w as (partition by l.tenant_id, l.chain order by l.seq)) e$q$, log)
    into entries, bad_hash, bad_link, bad_seq;
  execute format($q$
    select count(*) from %s h
      left join lateral (select l.seq, l.hash from %s l where l.tenant_id = h.tenant_id and l.chain = h.chain
                          order by l.seq desc limit 1) l on true
     where h.seq <> coalesce(l.seq, 0)
        or h.hash <> coalesce(l.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)$q$,
    heads, log)
    into bad_heads;
end
$$;

vacuum analyze bench_plain, bench_bizos, bench_plpgsql, bench_chained;
