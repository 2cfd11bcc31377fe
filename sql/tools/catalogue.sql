-- The catalogue of the functions and views of schema :'schema' (extension
-- members excluded), one line per object and property, sorted.
select line from (
  select format('function %s | %s', p.oid::regprocedure, x.prop) as line
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    cross join lateral (values
      ('def ' || pg_get_functiondef(p.oid)),
      ('acl ' || coalesce(p.proacl::text, '-')),
      ('config ' || coalesce(p.proconfig::text, '-')),
      ('secdef ' || p.prosecdef::text),
      ('volatile ' || p.provolatile::text),
      ('owner ' || pg_get_userbyid(p.proowner)),
      ('comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-'))) x(prop)
   where n.nspname = :'schema'
     and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                      and d.objid = p.oid and d.deptype = 'e')
  union all
  select format('view %s | %s', c.relname, x.prop)
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    cross join lateral (values
      ('def ' || pg_get_viewdef(c.oid)),
      ('options ' || coalesce(c.reloptions::text, '-')),
      ('acl ' || coalesce(c.relacl::text, '-')),
      ('owner ' || pg_get_userbyid(c.relowner)),
      ('comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-'))) x(prop)
   where n.nspname = :'schema' and c.relkind = 'v'
  union all
  -- column comments of views, and the whole set of relations and triggers
  select format('view-column %s.%s | %s', c.relname, a.attname, col_description(c.oid, a.attnum))
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0
   where n.nspname = :'schema' and c.relkind = 'v' and col_description(c.oid, a.attnum) is not null
  union all
  select format('relation %s %s', c.relkind::text, c.relname)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = :'schema'
  union all
  select format('trigger %s.%s %s', c.relname, t.tgname, pg_get_triggerdef(t.oid))
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = :'schema' and not t.tgisinternal
  union all
  select format('policy %s.%s %s %s', c.relname, pol.polname, pg_get_expr(pol.polqual, pol.polrelid),
                pg_get_expr(pol.polwithcheck, pol.polrelid))
    from pg_policy pol join pg_class c on c.oid = pol.polrelid join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = :'schema'
) x
order by line;
