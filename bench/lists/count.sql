-- A template: run substitutes @relation@ and @key@ for each list.
-- scripts/bench lists: counting the rows of a list the caller may read, as a
-- request (the BFF's first statement, the count, commit).
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
select count(*) from @relation@;
commit;
