-- pgbench: the BFF's authenticating statement (db.rs, begin_request!),
-- with control.placement_check() of the claims' placement_version.
begin;
select authenticate_request(), control.placement_check()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
commit;
