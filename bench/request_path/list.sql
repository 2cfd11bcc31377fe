-- pgbench: a list request as the BFF runs it, without HTTP: the BFF's
-- first statement, then the newest 50 leads and the newest 50 customers
-- the caller may read (a sales manager: his team's rows, through the
-- policies of leads and customers), commit.
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
select count(*) from (select lead_id from leads order by created_at desc limit 50) l;
select count(*) from (select customer_id from customers order by created_at desc limit 50) c;
commit;
