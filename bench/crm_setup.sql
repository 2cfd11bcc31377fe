-- scripts/bench crm: the tenant, its users, the data generators and the
-- baseline table. Run as bizos_owner (the owner of the business schema,
-- which RLS does not restrict) after `bizos migrate`.
--   psql -v tenant=<uuid> -f crm_setup.sql
\set ON_ERROR_STOP on

-- One tenant; its default role permissions arrive by trigger.
insert into tenants (tenant_id, slug, name) values (:'tenant', 'bench-crm', 'PT Bench Logistik Nusantara');

-- Users 1 (marketing manager), 2 (sales manager) and 3–6 (salespeople,
-- reporting to 2). Their ids are 00000000-0000-4000-8000-00000000000N.
insert into profiles (tenant_id, user_id, email, full_name, app_role, manager_user_id)
values
  (:'tenant', '00000000-0000-4000-8000-000000000001', 'rina.marketing@bench.co.id', 'Rina Marlina', 'marketing_manager', null),
  (:'tenant', '00000000-0000-4000-8000-000000000002', 'agus.sales@bench.co.id', 'Agus Santoso', 'sales_manager', null);
insert into profiles (tenant_id, user_id, email, full_name, app_role, manager_user_id)
values
  (:'tenant', '00000000-0000-4000-8000-000000000003', 'budi@bench.co.id', 'Budi Hartono', 'salesperson', '00000000-0000-4000-8000-000000000002'),
  (:'tenant', '00000000-0000-4000-8000-000000000004', 'dewi@bench.co.id', 'Dewi Lestari', 'salesperson', '00000000-0000-4000-8000-000000000002'),
  (:'tenant', '00000000-0000-4000-8000-000000000005', 'eko@bench.co.id', 'Eko Prasetyo', 'salesperson', '00000000-0000-4000-8000-000000000002'),
  (:'tenant', '00000000-0000-4000-8000-000000000006', 'sari@bench.co.id', 'Sari Wulandari', 'salesperson', '00000000-0000-4000-8000-000000000002');

-- ------------------------------------------------------------ generators --
-- Deterministic in the customer number i (hash-based, no random()), so a
-- pgbench script can name an existing customer's NPWP, e-mail or company
-- by its number. Single-expression SQL functions of immutable parts only
-- (no concat_ws, no text || integer), so the planner inlines them.

-- A word of `words` chosen by (i, salt).
create function bench_crm_pick(words text[], i bigint, salt integer) returns text
language sql immutable parallel safe
as $$ select words[1 + (hashint8extended(i, salt) & 2147483647) % cardinality(words)] $$;

-- 0..n-1 chosen by (i, salt).
create function bench_crm_roll(i bigint, salt integer, n integer) returns integer
language sql immutable parallel safe
as $$ select ((hashint8extended(i, salt) & 2147483647) % n)::integer $$;

-- The first word: for half the names a coined brand word of two or three
-- syllables ("Kalindo", "Sumitra", "Rajatama": about 40,000 of them), for
-- the other half one of 60 words that many Indonesian company names share.
create function bench_crm_coined(i bigint) returns text
language sql immutable parallel safe
as $$ select initcap(bench_crm_pick('{ka,ra,ma,sa,ta,na,la,da,ba,ga,pa,ja,wi,ri,mi,si,ti,ni,
  li,di,bu,gu,su,tu,ko,ro,mo,so,to,no,lo,do,ha,he,ke,se,te,ar,in,an,on,dra,tri,sin,lin,han,ken,
  gra,pri,sur}'::text[], i, 20)
  || case when bench_crm_roll(i, 21, 2) = 0 then bench_crm_pick('{ka,ra,ma,sa,ta,na,la,da,ba,ga,pa,
  ja,wi,ri,mi,si,ti,ni,li,di,bu,gu,su,tu,ko,ro,mo,so,to,no,lo,do,ha,he,ke,se,te,ar,in,an,on,dra,
  tri,sin,lin,han,ken,gra,pri,sur}'::text[], i, 22) else '' end
  || bench_crm_pick('{indo,tama,jaya,mas,ko,tech,tex,ta,ma,na,co,nusa,mitra,dana,sindo,graha}'::text[], i, 23)) $$;

create function bench_crm_first(i bigint) returns text
language sql immutable parallel safe
as $$ select case when bench_crm_roll(i, 24, 2) = 0 then bench_crm_coined(i)
  else bench_crm_pick('{Sinar,Cahaya,Mitra,Karya,Bintang,Surya,Putra,Mega,Citra,Tunas,
  Prima,Harapan,Anugerah,Berkah,Bumi,Samudra,Nusantara,Global,Duta,Eka,Dwi,Tri,Catur,Panca,Graha,
  Wahana,Sarana,Bahtera,Cipta,Inti,Adi,Sumber,Rejeki,Kencana,Intan,Permata,Mutiara,Pelangi,Fajar,
  Mentari,Rajawali,Garuda,Elang,Kijang,Naga,Matahari,Bahari,Pusaka,Andalan,Lintas,Buana,Dharma,
  Artha,Guna,Mandala,Cakra,Widya,Trans,Aneka,Sukses}'::text[], i, 1) end $$;

create function bench_crm_second(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_pick('{Jaya,Abadi,Makmur,Sejahtera,Sentosa,Mandiri,Utama,Perkasa,Lestari,
  Bersama,Gemilang,Baru,Indah,Mulia,Agung,Sakti,Raya,Santosa,Persada,Kencana,Cemerlang,Berjaya,
  Megah,Setia,Sukses,Terang,Pratama,Wijaya,Kusuma,Sejati,Makmur Jaya,Jaya Abadi,Mas,Perdana,Cipta,
  Selaras,Damai,Sentral,Semesta,Sarana,Lancar,Prima,Murni,Karya,Nusa,Mulya,Asia,Internasional,
  Anugrah,Permai}'::text[], i, 2) $$;

-- A sector word for 55% of the names.
create function bench_crm_sector(i bigint) returns text
language sql immutable parallel safe
as $$ select case when bench_crm_roll(i, 3, 100) < 55 then bench_crm_pick('{Logistik,Transportasi,
  Ekspedisi,Teknik,Elektrik,Konstruksi,Trading,Niaga,Kimia,Plastik,Tekstil,Pangan,Farma,Medika,
  Digital,Teknologi,Solusi,Energi,Mineral,Agro,Kargo,Shipping,Freight,Packaging,Industri,Manufaktur,
  Properti,Distribusi,Retail,Furniture,Baja,Motor,Mesin,Kertas,Semen,Gas,Perikanan,Percetakan,
  Komputindo,Sarana Niaga}'::text[], i, 4) end $$;

-- A place or family name for 20% of the names.
create function bench_crm_tail(i bigint) returns text
language sql immutable parallel safe
as $$ select case when bench_crm_roll(i, 5, 100) < 20 then bench_crm_pick('{Indonesia,Nusantara,
  Jakarta,Surabaya,Bandung,Semarang,Medan,Makassar,Batam,Bekasi,Tangerang,Cikarang,Karawang,Cilegon,
  Balikpapan,Pontianak,Palembang,Denpasar,Kalimantan,Sumatera,Jawa Timur,Tanjung Priok,Wijaya,
  Gunawan,Santoso,Halim,Tanoto,Salim,Hartono,Kusnadi,Sutanto,Lim,Tan,Wibowo,Setiawan,Hidayat,
  Siregar,Nasution,Simanjuntak,Lubis}'::text[], i, 6) end $$;

-- The name without legal form: 2–4 words.
create function bench_crm_core(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_first(i) || ' ' || bench_crm_second(i) || coalesce(' ' || bench_crm_sector(i), '')
          || coalesce(' ' || bench_crm_tail(i), '') $$;

-- Company name with its legal form the way people write it: "PT X",
-- "CV X", "UD X", "PT. X", "PT X Tbk", "X, PT".
create function bench_crm_prefix(r integer) returns text
language sql immutable parallel safe
as $$ select case when r < 55 then 'PT ' when r < 80 then 'CV ' when r < 88 then 'UD '
                  when r < 94 then 'PT. ' when r < 98 then 'PT ' else '' end $$;

create function bench_crm_suffix(r integer) returns text
language sql immutable parallel safe
as $$ select case when r < 94 then '' when r < 98 then ' Tbk' else ', PT' end $$;

create function bench_crm_name(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_prefix(bench_crm_roll(i, 7, 100)) || bench_crm_core(i) || bench_crm_suffix(bench_crm_roll(i, 7, 100)) $$;

-- A similar name, the way a second person types the same or a related
-- company (v = 1..4): two letters swapped in the second word, the last word
-- missing, " Indonesia" added, another legal form (same normalised name).
create function bench_crm_swap2(w text) returns text
language sql immutable parallel safe
as $$ select substr(w, 1, 1) || substr(w, 3, 1) || substr(w, 2, 1) || substr(w, 4) $$;

create function bench_crm_fuzzy(i bigint, v integer) returns text
language sql immutable parallel safe
as $$ select case v
    when 1 then 'PT ' || bench_crm_first(i) || ' ' || bench_crm_swap2(bench_crm_second(i))
                || coalesce(' ' || bench_crm_sector(i), '') || coalesce(' ' || bench_crm_tail(i), '')
    when 2 then 'CV ' || regexp_replace(bench_crm_core(i), ' [^ ]+$', '')
    when 3 then 'PT ' || bench_crm_core(i) || ' Indonesia'
    else 'P.T. ' || upper(bench_crm_core(i)) end $$;

-- Luhn doubling of one digit.
create function bench_crm_dbl(d integer) returns integer
language sql immutable parallel safe
as $$ select case when d < 5 then 2 * d else 2 * d - 9 end $$;

-- A 15-digit NPWP in the dotted form 01.234.567.8-901.000, unique for
-- i < 10^8: 8 digits (an invertible scramble of i), their Luhn check digit,
-- a tax-office code and branch 000.
create function bench_crm_npwp_fmt(d text, i bigint) returns text
language sql immutable parallel safe
as $$ select substr(d, 1, 2) || '.' || substr(d, 3, 3) || '.' || substr(d, 6, 3) || '.'
          || ((10 - (bench_crm_dbl(substr(d, 8, 1)::int) + substr(d, 7, 1)::int
                     + bench_crm_dbl(substr(d, 6, 1)::int) + substr(d, 5, 1)::int
                     + bench_crm_dbl(substr(d, 4, 1)::int) + substr(d, 3, 1)::int
                     + bench_crm_dbl(substr(d, 2, 1)::int) + substr(d, 1, 1)::int) % 10) % 10)::text
          || '-' || (100 + i % 900)::text || '.000' $$;

create function bench_crm_npwp(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_npwp_fmt(lpad(((i * 7919 + 1234567) % 100000000)::text, 8, '0'), i) $$;

-- A unique e-mail address on the company's domain.
create function bench_crm_email(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_pick('{info,sales,admin,marketing,purchasing,finance,cs,office}'::text[], i, 8)
          || '.' || i::text || '@' || lower(replace(bench_crm_first(i) || bench_crm_second(i), ' ', ''))
          || bench_crm_pick('{.co.id,.com,.id,.co.id}'::text[], i, 9) $$;

-- A mobile (0812-3456-7890) or Jakarta/Surabaya landline ((021) 5555-1234).
create function bench_crm_phone(i bigint) returns text
language sql immutable parallel safe
as $$ select case when bench_crm_roll(i, 10, 100) < 70
    then '08' || bench_crm_pick('{11,12,13,21,22,52,53,77,78,81,82,83,95,96,97,98,99}'::text[], i, 11)
         || '-' || lpad(bench_crm_roll(i, 12, 10000)::text, 4, '0') || '-' || lpad(bench_crm_roll(i, 13, 10000)::text, 4, '0')
    else '(0' || bench_crm_pick('{21,31}'::text[], i, 14) || ') ' || (5 + bench_crm_roll(i, 15, 4))::text
         || lpad(bench_crm_roll(i, 16, 1000)::text, 3, '0') || '-' || lpad(bench_crm_roll(i, 17, 10000)::text, 4, '0') end $$;

create function bench_crm_city(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_pick('{Jakarta Utara,Jakarta Barat,Jakarta Pusat,Jakarta Selatan,Jakarta Timur,
  Surabaya,Bandung,Semarang,Medan,Makassar,Batam,Bekasi,Tangerang,Cikarang,Karawang,Balikpapan,
  Palembang,Denpasar,Sidoarjo,Gresik}'::text[], i, 18) $$;

create function bench_crm_channel(i bigint) returns text
language sql immutable parallel safe
as $$ select bench_crm_pick('{website,whatsapp,referral,event,social_media,email,phone,walk_in,
  marketplace,partner,other}'::text[], i, 19) $$;

grant execute on all functions in schema public to bizos_authenticated;

-- ------------------------------------------------------------- baseline --
-- The bundle's baseline: one lead-shaped row, no RPC, no triggers, no RLS.
create table bench_crm_plain_leads (
  tenant_id     uuid        not null,
  lead_id       uuid        not null default gen_random_uuid(),
  channel       text        not null,
  status        text        not null default 'NEW',
  company_name  text        not null,
  npwp          text,
  contact_phone text,
  created_by    uuid        default bizos.uid(),
  created_at    timestamptz not null default now(),
  primary key (tenant_id, lead_id)
);
grant insert on bench_crm_plain_leads to bizos_authenticated;
