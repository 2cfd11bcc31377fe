-- Demo data for `scripts/dev up`: one tenant ("demo") with a user of every
-- app role, in teams. Idempotent: re-running changes nothing. Not a
-- migration: production databases never get it.

insert into tenants (slug, name, tier, region)
values ('demo', 'PT Demo Nusantara Logistik', 'shared', 'id-jakarta')
on conflict (slug) do nothing;

-- Managers first, so team members can name them.
insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
select t.tenant_id, gen_random_uuid(), u.email, u.full_name, u.app_role, u.dept_code
  from tenants t
 cross join (values
   ('admin@demo.bizos.test',            'Andi Pratama',        'super_admin',       null),
   ('direktur@demo.bizos.test',         'Budi Santoso',        'director',          'BOD'),
   ('marketing.lead@demo.bizos.test',   'Citra Lestari',       'marketing_manager', 'MKT'),
   ('sales.manager@demo.bizos.test',    'Dewi Kartika Sari',   'sales_manager',     'SLS'),
   ('ops.jakarta@demo.bizos.test',      'Eko Nugroho',         'ops',               'OPS-JKT'),
   ('ops.surabaya@demo.bizos.test',     'Fitri Handayani',     'ops',               'OPS-SBY'),
   ('finance@demo.bizos.test',          'Gita Permatasari',    'finance',           'FIN')
 ) as u(email, full_name, app_role, dept_code)
 where t.slug = 'demo'
on conflict (tenant_id, email) do nothing;

insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id)
select t.tenant_id, gen_random_uuid(), u.email, u.full_name, 'salesperson', 'SLS', m.user_id
  from tenants t
  join profiles m on m.tenant_id = t.tenant_id and m.email = 'sales.manager@demo.bizos.test'
 cross join (values
   ('hendra.wijaya@demo.bizos.test',  'Hendra Wijaya'),
   ('indah.puspita@demo.bizos.test',  'Indah Puspitasari'),
   ('joko.susilo@demo.bizos.test',    'Joko Susilo')
 ) as u(email, full_name)
 where t.slug = 'demo'
on conflict (tenant_id, email) do nothing;
