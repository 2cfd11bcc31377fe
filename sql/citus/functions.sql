-- The SQL functions Citus cannot plan, rewritten as PL/pgSQL, and nested
-- execution allowed to the functions that read distributed tables (run by
-- `bizos migrate` on a Citus coordinator after distribute.sql, every time:
-- the api files put back the SQL form when they run again).
--
-- Citus cannot plan a statement of a SQL function that reads a distributed
-- table and uses the function's parameters ("could not create distributed
-- plan"): the executor hands it the statement with unresolved parameter
-- references. PL/pgSQL passes them as bound parameters, which Citus plans
-- like any prepared statement. A single node keeps the SQL form (some are
-- written to be inlined into their callers).
--
-- The rewrite keeps everything but the language and the body
-- (pg_get_functiondef: arguments, result, volatility, SECURITY DEFINER,
-- search_path, grants and owner stay as they are):
--   * void: the statement itself;
--   * OUT or TABLE columns: FOR <columns> IN <statement> LOOP RETURN
--     [NEXT] …, the first row (or every row, for SETOF);
--   * anything else: the same with one variable of the result type; no row
--     gives NULL (or no rows), as from the SQL function;
--   * the caller's tenant, `bizos.tenant_id()`, read once into a variable.
-- `#variable_conflict use_column` keeps SQL's rule that a column name wins
-- over a parameter of the same name.
do $functions$
declare
  r record;
  v_outs text;
  v_directives text;
  v_body text;
  v_def text;
begin
  -- What such a function reads: a table Citus manages (distributed or
  -- reference: a query of either is a distributed query), or a view of
  -- this schema (most of them read such tables).
  drop table if exists pg_temp.citus_readers;
  create temporary table pg_temp.citus_readers on commit drop as
  select c.relname::text as relname
    from pg_catalog.pg_dist_partition d
    join pg_catalog.pg_class c on c.oid = d.logicalrelid
  union
  select c.relname::text
    from pg_catalog.pg_class c
   where c.relkind in ('v', 'm') and c.relnamespace = pg_catalog.current_schema()::regnamespace;

  for r in
    select p.oid, p.prosrc, p.proretset, p.prorettype,
           pg_catalog.format_type(p.prorettype, null) as rettype,
           p.proargnames, p.proargmodes
      from pg_catalog.pg_proc p
      join pg_catalog.pg_language l on l.oid = p.prolang
     where p.pronamespace = pg_catalog.current_schema()::regnamespace
       and l.lanname = 'sql' and p.pronargs > 0 and p.prosqlbody is null
       and exists (select 1 from pg_temp.citus_readers x where p.prosrc ~ ('\m' || x.relname || '\M'))
  loop
    v_body := pg_catalog.rtrim(pg_catalog.btrim(r.prosrc), E'; \n\t');
    select pg_catalog.string_agg(pg_catalog.quote_ident(a.name), ', ' order by a.ord)
      into v_outs
      from unnest(r.proargnames, r.proargmodes) with ordinality as a(name, mode, ord)
     where a.mode in ('o', 'b', 't');
    -- The caller's tenant as a variable: a parameter of the statement,
    -- which Citus routes to the tenant's shard (a call of bizos.tenant_id()
    -- in the statement would send it to every shard).
    v_body := pg_catalog.regexp_replace(v_body,
      '\(\s*select\s+bizos\.tenant_id\(\)\s*\)|bizos\.tenant_id\(\)', 'v_caller_tenant', 'gi');
    if r.prorettype = 'void'::regtype then
      v_body := pg_catalog.format(E'begin\n%s;\nend', v_body);
    elsif v_outs is not null then
      v_body := pg_catalog.format(E'begin\nfor %s in\n%s\nloop\n%s;\nend loop;\nreturn;\nend',
        v_outs, v_body, case when r.proretset then 'return next' else 'return' end);
    elsif r.proretset then
      v_body := pg_catalog.format(E'v_result %s;\nbegin\nfor v_result in\n%s\nloop\nreturn next v_result;\nend loop;\nreturn;\nend',
        r.rettype, v_body);
    else
      v_body := pg_catalog.format(E'v_result %s;\nbegin\nfor v_result in\n%s\nloop\nreturn v_result;\nend loop;\nreturn null;\nend',
        r.rettype, v_body);
    end if;
    v_body := E'#variable_conflict use_column\ndeclare\nv_caller_tenant uuid := bizos.tenant_id();\n' || v_body;
    v_def := pg_catalog.pg_get_functiondef(r.oid);
    -- pg_get_functiondef: "... LANGUAGE sql\n ... AS $function$<src>$function$\n"
    v_def := pg_catalog.regexp_replace(v_def, E'\n LANGUAGE sql\n', E'\n LANGUAGE plpgsql\n');
    v_def := pg_catalog.left(v_def, pg_catalog.strpos(v_def, E'\nAS $function$')) ||
             'AS $citus_plpgsql$' || v_body || '$citus_plpgsql$';
    execute v_def;
  end loop;

  -- PL/pgSQL functions that read such tables and filter by the caller's
  -- tenant: the same variable, so that their statements are routed to the
  -- tenant's shards. A call of bizos.tenant_id() in a statement is no
  -- value Citus can route by: the statement goes to every shard, on every
  -- node. On the coordinator that costs a round of all 32 shards; inside a
  -- query on a shard (a policy or view calling the function on a worker)
  -- it opens connections from the worker to the others, which Citus 13.2
  -- leaves behind when the coordinator's transaction ends in PREPARE
  -- TRANSACTION: the worker backend crashed in its next COMMIT PREPARED
  -- (citusdata/citus#6424; docs/citus.md). The body becomes an inner block
  -- of one that declares the variable (PL/pgSQL directives stay first).
  -- Functions that change the claims themselves (api_key_create,
  -- authenticate_request) keep reading them where they do; and a body
  -- rewritten before (by this loop, or the SQL rewrite above) is left.
  for r in
    select p.oid, p.prosrc
      from pg_catalog.pg_proc p
      join pg_catalog.pg_language l on l.oid = p.prolang
     where p.pronamespace = pg_catalog.current_schema()::regnamespace
       and l.lanname = 'plpgsql'
       and p.prosrc ~ 'bizos\.tenant_id\(\)'
       and p.prosrc !~ 'v_caller_tenant uuid := bizos\.tenant_id\(\)'
       and p.prosrc !~* 'request\.jwt\.claims'
       and exists (select 1 from pg_temp.citus_readers x where p.prosrc ~ ('\m' || x.relname || '\M'))
  loop
    v_body := pg_catalog.regexp_replace(r.prosrc,
      '\(\s*select\s+bizos\.tenant_id\(\)\s*\)|bizos\.tenant_id\(\)', 'v_caller_tenant', 'gi');
    -- Leading directives (#variable_conflict, #print_strict_params).
    v_directives := pg_catalog.substring(v_body, '^(\s*(#[^\n]*\n\s*)*)');
    v_body := pg_catalog.rtrim(pg_catalog.substr(v_body, pg_catalog.length(v_directives) + 1), E'; \n\t');
    v_body := pg_catalog.format(E'%s\ndeclare\nv_caller_tenant uuid := bizos.tenant_id();\nbegin\n%s;\nend',
      v_directives, v_body);
    v_def := pg_catalog.pg_get_functiondef(r.oid);
    v_def := pg_catalog.left(v_def, pg_catalog.strpos(v_def, E'\nAS $function$')) ||
             'AS $citus_plpgsql$' || v_body || '$citus_plpgsql$';
    execute v_def;
  end loop;

  -- Functions that read distributed tables may run inside a query on a
  -- shard: a view or policy calls them per row (add_business_minutes in
  -- v_sla_status, has_permission's fallbacks), and Citus refuses their
  -- queries there unless nested execution is allowed. Every such read is
  -- of the tenant's own rows, co-located with the row being read (the
  -- tenant variable above routes it), or of a reference table: it runs on
  -- the same node, in the same transaction (as the policy helpers of
  -- policies.sql do). One that left the node would crash the worker at
  -- the end of a two-phase commit (above); the citus suite checks that no
  -- node runs a multi-shard query while the demo seeds. Read-only
  -- (STABLE) ones only: a volatile function (an RPC that writes) runs on
  -- the coordinator; sent to a worker, its caller gets Citus's error.
  for r in
    select p.oid::regprocedure as fn
      from pg_catalog.pg_proc p
      join pg_catalog.pg_language l on l.oid = p.prolang
     where p.pronamespace = pg_catalog.current_schema()::regnamespace
       and l.lanname in ('sql', 'plpgsql')
       and p.prorettype <> 'trigger'::regtype
       and p.prokind = 'f'
       and p.provolatile in ('s', 'i')
       and not coalesce('citus.allow_nested_distributed_execution=on' = any (p.proconfig), false)
       and exists (select 1 from pg_temp.citus_readers x where p.prosrc ~ ('\m' || x.relname || '\M'))
  loop
    execute pg_catalog.format('alter function %s set citus.allow_nested_distributed_execution = on', r.fn);
  end loop;
end
$functions$;

-- Generic plans: the api files set plan_cache_mode = force_generic_plan on
-- functions whose statements a single node plans once per session
-- (none does today; vocabulary_problem did). The setting holds for everything
-- they call, and Citus cannot plan a generic plan of a query on a
-- distributed table ("could not create distributed plan"): it plans each
-- call with its values, so here the setting goes.
do $generic$
declare
  r record;
begin
  for r in
    select p.oid::regprocedure as fn
      from pg_catalog.pg_proc p
     where p.pronamespace = pg_catalog.current_schema()::regnamespace
       and 'plan_cache_mode=force_generic_plan' = any (p.proconfig)
  loop
    execute pg_catalog.format('alter function %s reset plan_cache_mode', r.fn);
  end loop;
end
$generic$;
