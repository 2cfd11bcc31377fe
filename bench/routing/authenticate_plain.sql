-- pgbench: the BFF's authenticating statement without the placement
-- check (as before placements existed).
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
commit;
