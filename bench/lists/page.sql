-- A template: run substitutes @relation@ and @key@ for each list.
-- scripts/bench lists: a page of a list (GET /api/<list>?limit=50) without HTTP, as the
-- BFF runs it: its first statement (role, claims, authenticate_request()),
-- the list query of bff/src/routes/list.rs (the page and one row more),
-- commit. Run with -M extended: the BFF sends the list unprepared.
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
select to_jsonb(x) as row, x.created_at, x.@key@ as id from (select * from @relation@ x where x.tenant_id = :tenant order by x.created_at desc, x.@key@ desc limit 51) x order by x.created_at desc, x.@key@ desc;
commit;
