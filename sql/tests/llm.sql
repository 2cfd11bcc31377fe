-- pgTAP tests of V26 (the LLM gateway's tables): who reads which rows of
-- the counters, reservations, cache, ledger, limits and keys, and that no
-- request role writes any of them except through the functions.
--
-- Run by tests/tests/suite/sql_scripts.rs with pg_prove, as a superuser, on
-- a fresh migrated database:
--   PGHOST=... PGDATABASE=<db> pg_prove sql/tests/llm.sql
-- Users act through `set local role bizos_authenticated` + request.jwt.claims;
-- everything is rolled back. The behaviour of the functions themselves
-- (limits under concurrency, settlement, prices, cache, margin) is tested in
-- tests/tests/suite/llm_sql.rs.
begin;
\ir lib/tap.sql
select plan(27);

do $$
declare
  ta uuid; tb uuid;
begin
  insert into tenants (slug, name) values ('llm-test-a', 'LLM Test A') returning tenant_id into ta;
  insert into tenants (slug, name) values ('llm-test-b', 'LLM Test B') returning tenant_id into tb;
  perform pg_temp.put('ta', ta); perform pg_temp.put('tb', tb);
  perform pg_temp.put(r, gen_random_uuid()) from unnest(array['adm', 'dir', 'sp', 'sp2', 'admb']) r;
  insert into profiles (tenant_id, user_id, email, full_name, app_role) values
    (ta, pg_temp.id('adm'), 'adm@llm.test', 'Admin', 'super_admin'),
    (ta, pg_temp.id('dir'), 'dir@llm.test', 'Dira', 'director'),
    (ta, pg_temp.id('sp'), 'sp@llm.test', 'Sari', 'salesperson'),
    (ta, pg_temp.id('sp2'), 'sp2@llm.test', 'Budi', 'salesperson'),
    (tb, pg_temp.id('admb'), 'admb@llm.test', 'Admin B', 'super_admin');
  -- The operator's limit of tenant A.
  perform llm_limit_set(ta, 'chat', 'tenant', 100, null);
end $$;

-- One whole generation (cached) as the caller of the claims, and one left open.
create function pg_temp.generate(feature text, tokens bigint, cache_byte text) returns jsonb
language plpgsql as $$
declare
  r jsonb;
begin
  r := llm_begin(bizos.tenant_id(), bizos.uid(), feature, null, tokens, null);
  r := llm_finish(bizos.tenant_id(), (r ->> 'reservation_id')::uuid,
         jsonb_build_array(jsonb_build_object('provider', 'openai', 'model', 'gpt-4o-mini', 'key_ref', 'platform:0',
                                              'tokens_in', tokens, 'tokens_out', tokens, 'outcome', 'ok')),
         jsonb_build_object('cache_key', repeat(cache_byte, 32), 'model', 'gpt-4o-mini', 'response', 'ok'));
  perform llm_begin(bizos.tenant_id(), bizos.uid(), feature, null, tokens, null);
  return r;
end $$;

-- Counts of the rows the current caller reads.
create function pg_temp.seen(rel text) returns bigint language plpgsql as $$
declare
  n bigint;
begin
  execute format('select count(*) from %s', rel) into n;
  return n;
end $$;

select pg_temp.act('sp');
set local role bizos_authenticated;
select pg_temp.generate('chat', 10, 'a1') \g /dev/null
reset role;
select pg_temp.act('sp2');
set local role bizos_authenticated;
select pg_temp.generate('chat', 20, 'b2') \g /dev/null
reset role;
select pg_temp.act('admb');
set local role bizos_authenticated;
select pg_temp.generate('digest', 30, 'a1') \g /dev/null
select llm_key_add('openai', 'Key B', '\x01', '\x000102030405060708090a0b',
                   '\x000102030405060708090a0b0c0d0e0f', '\x000102030405060708090a0b', 'm1') \g /dev/null
reset role;
select pg_temp.act('adm');
set local role bizos_authenticated;
select llm_key_add('openai', 'Key A', '\x01', '\x000102030405060708090a0b',
                   '\x000102030405060708090a0b0c0d0e0f', '\x000102030405060708090a0b', 'm1') \g /dev/null
reset role;

-- ------------------------------------------------------------------ a salesperson
select pg_temp.act('sp');
set local role bizos_authenticated;
select is(pg_temp.seen('llm_counters where user_id <> ''00000000-0000-0000-0000-000000000000'''), 2::bigint,
          'a salesperson reads their own counters (day and month) ...');
select is(pg_temp.seen('llm_counters where user_id = ''00000000-0000-0000-0000-000000000000'''), 2::bigint,
          '... and the tenant''s, not a colleague''s');
select is(pg_temp.seen('llm_reservations'), 1::bigint, 'their own open generation');
select is(pg_temp.seen('llm_calls'), 0::bigint, 'not the ledger');
select is(pg_temp.seen('llm_cache'), 0::bigint, 'not the cache');
select is(pg_temp.seen('v_llm_cost_daily'), 0::bigint, 'nor the costs');
select is(pg_temp.seen('v_llm_keys'), 0::bigint, 'nor the keys');
select is(pg_temp.seen('llm_limits'), 1::bigint, 'the limits they work under');
select throws_ok('insert into llm_calls (tenant_id, feature, outcome) values (bizos.tenant_id(), ''chat'', ''ok'')',
                 '42501', null, 'nobody writes the ledger directly');
select throws_ok('update llm_counters set used = 0', '42501', null, 'nor the counters');
select throws_ok('delete from llm_reservations', '42501', null, 'nor the reservations');
select throws_ok('update llm_limits set generations_per_day = null', '42501', null, 'nor the limits');
select throws_ok('delete from llm_cache', '42501', null, 'nor the cache');
reset role;

-- ------------------------------------------------------------------ a director
select pg_temp.act('dir');
set local role bizos_authenticated;
select is(pg_temp.seen('llm_calls'), 2::bigint, 'a director reads the tenant''s ledger');
select is(pg_temp.seen('llm_counters'), 6::bigint, 'all its counters');
select is(pg_temp.seen('llm_reservations'), 2::bigint, 'all its open generations');
select is(pg_temp.seen('llm_cache'), 2::bigint, 'its cache');
select is(pg_temp.seen('v_llm_keys'), 0::bigint, 'but not the key metadata');
select throws_ok('delete from llm_calls', '42501', null, 'and deletes nothing');
reset role;

-- ------------------------------------------------------------------ a super admin
select pg_temp.act('adm');
set local role bizos_authenticated;
select is(pg_temp.seen('llm_calls'), 2::bigint, 'a super admin reads the ledger of the tenant only');
select is((select sum(calls) from v_llm_cost_daily)::bigint, 2::bigint, 'and its costs');
select is((select array_agg(label) from v_llm_keys), array['Key A'], 'the tenant''s key metadata');
select throws_ok('select ciphertext from llm_tenant_keys', '42501', null, 'never the key bytes');
select throws_ok('select wrapped_dek from llm_tenant_keys', '42501', null, 'nor the wrapped data key');
select throws_ok(format('select * from llm_key_material(%L, ''openai'')', pg_temp.id('ta')), '42501', null,
                 'nor the key material');
select is(pg_temp.seen(format('llm_cache where tenant_id = %L', pg_temp.id('tb'))), 0::bigint,
          'nothing of tenant B (same cache key there)');
select throws_ok('update llm_tenant_keys set status = ''revoked''', '42501', null,
                 'keys are revoked through llm_key_revoke only');
reset role;

select * from finish();
rollback;
