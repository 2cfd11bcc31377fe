-- Vector indexes that stay trained (issue 49): the state of every
-- bizos_ivf index of this schema, and the worker's enqueue of their
-- rebuilds. The rebuild itself (REINDEX INDEX CONCURRENTLY, which cannot
-- run inside a function) is the `vector.retrain` job's handler
-- (bff/src/vector_index.rs), on the maintenance login. docs/vector.md.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- vector_index_states(): per bizos_ivf index of this schema (valid ones:
-- not the half-built copy of a REINDEX CONCURRENTLY), its state
-- (bizos.ivf_index_state: trained and current rows, lists, balance, whether
-- a rebuild is due and why) and the invalid copies a killed REINDEX
-- CONCURRENTLY left of it (<index>_ccnew, _ccold), which the next
-- vector.retrain drops. Reads every code page of each index.
create or replace function vector_index_states()
returns table (index_name text, table_name text, trained_rows bigint, current_rows bigint,
               lists integer, lists_after_rebuild integer, longest_list bigint,
               mean_list double precision, longest_to_mean double precision,
               needs_retrain boolean, reason text, leftovers text[])
language sql
volatile
security definer
as $$
  select format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, t.relname),
         s.trained_rows, s.current_rows, s.lists, s.lists_after_rebuild, s.longest_list,
         s.mean_list, s.longest_to_mean, s.needs_retrain, s.reason,
         array(select format('%I.%I', n.nspname, l.relname)
                 from pg_catalog.pg_index li
                 join pg_catalog.pg_class l on l.oid = li.indexrelid
                where li.indrelid = i.indrelid and not li.indisvalid
                  and l.relname ~ ('^' || pg_catalog.regexp_replace(c.relname::text, '(\W)', '\\\1', 'g') || '_cc(new|old)[0-9]*$')
                order by l.relname)
    from pg_catalog.pg_index i
    join pg_catalog.pg_class c on c.oid = i.indexrelid
    join pg_catalog.pg_class t on t.oid = i.indrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    join pg_catalog.pg_am a on a.oid = c.relam
   cross join lateral bizos.ivf_index_state(c.oid::regclass) s
   where a.amname = 'bizos_ivf' and i.indisvalid
     and n.oid = (select p.pronamespace from pg_catalog.pg_proc p
                   where p.oid = 'vector_index_states()'::pg_catalog.regprocedure)
   order by 1
$$;
select pin_search_path('vector_index_states()');
revoke execute on function vector_index_states() from public;
grant execute on function vector_index_states() to bizos_worker;
comment on function vector_index_states() is
  'Every bizos_ivf index of this schema: rows its lists were trained on and rows now, lists, balance, whether a rebuild is due and why, and the invalid copies a killed REINDEX CONCURRENTLY left (dropped by the next vector.retrain).';

-- vector_retrain_enqueue(period) -> jobs enqueued: a vector.retrain job
-- for each index of this schema that needs a rebuild or has leftovers,
-- deduplicated per index and period (the worker's upkeep period: several
-- workers enqueue it once), with priority -10 like the other upkeep. The
-- queue is per tenant: a platform job is filed under the operator's own
-- tenant (signup_sender's, which sends the sign-up e-mails) when there is
-- one, so that no customer's job list shows it, else under the oldest
-- active tenant (the schema's tenant on a schema tier). No tenant yet:
-- nothing to enqueue.
create or replace function vector_retrain_enqueue(period bigint)
returns integer
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_index text;
  v_jobs integer := 0;
begin
  select s.sender_tenant_id into v_tenant from signup_sender s;
  if v_tenant is null then
    select t.tenant_id into v_tenant
      from tenants t
     where t.status = 'active'
     order by t.created_at, t.tenant_id
     limit 1;
  end if;
  if v_tenant is null then
    return 0;
  end if;
  for v_index in
    select s.index_name from vector_index_states() s
     where s.needs_retrain or cardinality(s.leftovers) > 0
  loop
    perform job_enqueue_for(v_tenant, 'vector.retrain', jsonb_build_object('index', v_index),
                            null, -10, format('vector.retrain:%s:%s', v_index, period));
    v_jobs := v_jobs + 1;
  end loop;
  return v_jobs;
end
$$;
select pin_search_path('vector_retrain_enqueue(bigint)');
revoke execute on function vector_retrain_enqueue(bigint) from public;
grant execute on function vector_retrain_enqueue(bigint) to bizos_worker;
comment on function vector_retrain_enqueue(bigint) is
  'Enqueues a vector.retrain job (the operator''s sign-up tenant, else the oldest active one, priority -10, one per index and period) for every bizos_ivf index of this schema that needs a rebuild or has leftovers of a killed one; returns how many.';
