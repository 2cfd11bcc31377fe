-- pgbench: the BFF's first statement alone (role, claims, request id and
-- traceparent, authenticate_request()), as every request starts, in a
-- read-only transaction.
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
commit;
