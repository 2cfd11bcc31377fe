-- scripts/bench crm: the floor of a fuzzy find_or_create_customer call. Only
-- its pg_trgm candidate query (the similar-name part), with the names of
-- crm_foc_fuzzy.sql, as the table owner, in a transaction of the same shape.
\set k random(1, :ncust)
\set v random(1, 4)
begin;
select set_config('request.jwt.claims', '@CLAIMS@', true);
select c.customer_id, c.company_name, round(extensions.similarity(c.company_norm, n.v)::numeric, 3) as sim
  from bizos.norm_company(bench_crm_fuzzy(:k, :v)) n(v)
  join customers c on c.tenant_id = '@TENANT@' and c.company_norm operator(extensions.%) n.v
 order by sim desc
 limit 5;
commit;
