-- scripts/bench primitives, benchmark 1: three tables of one shape.
--   bench_plain    no trigger
--   bench_bizos    bizos.enable_audit (hash-chained, per-tenant chains)
--   bench_plpgsql  a supa_audit-style PL/pgSQL trigger: to_jsonb(NEW/OLD)
--                  into a plain log table with a bigserial key
-- Each table is prefilled with 50,000 rows over 8 tenants (row id g belongs
-- to tenant g % 8 + 1, which the update script relies on) before the
-- triggers are attached, so all three start with the same content.
\set ON_ERROR_STOP on
set client_min_messages = warning;

create function bench_tenant(n int) returns uuid
language sql immutable parallel safe
return ('00000000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid;

do $$
declare
  t text;
begin
  foreach t in array array['bench_plain', 'bench_bizos', 'bench_plpgsql'] loop
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

vacuum analyze bench_plain, bench_bizos, bench_plpgsql;
