-- scripts/bench primitives, benchmark 4: 1,000,000 messy values per type,
-- the way forms and spreadsheets deliver them (about 5% are not valid).
-- Deterministic: setseed() and a serial plan.
\set ON_ERROR_STOP on
set max_parallel_workers_per_gather = 0;
select setseed(0.42);

create table bench_messy as
select npwp, phone, email,
       case company_case when 'upper' then upper(company)
                         when 'lower' then lower(company)
                         else company end as company
from (
select
  -- NPWP: dotted, plain 15, "0"+15, spaced/dashed, NIK-based 16, junk
  case
    when r1 < 0.40 then substr(d, 1, 2) || '.' || substr(d, 3, 3) || '.' || substr(d, 6, 3) || '.'
                        || substr(d, 9, 1) || '-' || substr(d, 10, 3) || '.' || substr(d, 13, 3)
    when r1 < 0.60 then d
    when r1 < 0.70 then '0' || d
    when r1 < 0.85 then ' ' || substr(d, 1, 2) || (array[' ', '-'])[1 + (g % 2)] || substr(d, 3, 3) || ' '
                        || substr(d, 6, 4) || '-' || substr(d, 10, 6) || ' '
    when r1 < 0.95 then '3171' || lpad((1 + g % 28)::text, 2, '0') || lpad((1 + g % 28 + 40 * (g % 2))::text, 2, '0')
                        || lpad((1 + g % 12)::text, 2, '0') || lpad((g % 100)::text, 2, '0') || lpad((1 + g % 9999)::text, 4, '0')
    -- junk: a label, a digit missing, the all-zero placeholder of forms, a
    -- NIK-based number with month 13
    else (array['NPWP: ' || d, substr(d, 1, 14), '00.000.000.0-000.000',
                '3171014513' || lpad((g % 100)::text, 2, '0') || '0001'])[1 + (g % 4)]
  end as npwp,
  -- phones: mobile and landline in every common spelling, some extensions, junk
  case
    when r2 < 0.25 then '08' || substr(p, 1, 2) || '-' || substr(p, 3, 4) || '-' || substr(p, 7, 4)
    when r2 < 0.45 then '+62 8' || substr(p, 1, 2) || ' ' || substr(p, 3, 4) || ' ' || substr(p, 7, 4)
    when r2 < 0.60 then '(0' || (array['21', '22', '31', '274', '361'])[1 + (g % 5)] || ') '
                        || substr(p, 1, 3) || '-' || substr(p, 4, 4)
    when r2 < 0.75 then '08' || substr(p, 1, 9)
    when r2 < 0.85 then (array['62', '+62-', '0062 '])[1 + (g % 3)] || '8' || substr(p, 1, 3) || '-'
                        || substr(p, 4, 4) || '-' || substr(p, 8, 3)
    when r2 < 0.90 then '0' || (array['274', '361'])[1 + (g % 2)] || ' ' || substr(p, 1, 6)
    when r2 < 0.95 then '021-' || substr(p, 1, 7) || (array[' ext 12', ' psw. 204', ' x3'])[1 + (g % 3)]
    -- rare spellings and junk: typographic dashes, "(0)" after +62, a label,
    -- a service number, another country, no prefix
    else (array['0812' || U&'\2013' || substr(p, 1, 4) || U&'\2013' || substr(p, 5, 4),
                '+62 (0)21 ' || substr(p, 1, 7), 'Telp: 021 ' || substr(p, 1, 8),
                '14045' || substr(p, 1, 3), '+65 ' || substr(p, 1, 8), '8' || substr(p, 1, 9)])[1 + (g % 6)]
  end as phone,
  -- e-mail: case, +tags, surrounding spaces, junk
  case
    when r3 < 0.30 then lower(fn || '.' || ln) || '@' || dom
    when r3 < 0.50 then fn || '.' || ln || '@' || initcap(dom)
    when r3 < 0.65 then lower(fn) || '+' || (array['promo', 'crm', 'newsletter'])[1 + (g % 3)] || '@' || dom
    when r3 < 0.80 then '  ' || lower(fn) || g % 1000 || '@' || dom || ' '
    when r3 < 0.95 then ' ' || upper(fn || '_' || ln) || '+Kerja@' || upper(dom)
    -- junk: no @, no domain, a space, consecutive dots
    else (array[lower(fn) || ' at ' || dom, lower(fn) || '@localhost', fn || ' ' || ln || '@' || dom,
                lower(fn) || '..' || lower(ln) || '@' || dom])[1 + (g % 4)]
  end as email,
  -- company names: legal forms before/after, punctuation, case
  (array['', '', 'upper', 'lower'])[1 + (g % 4)] as company_case,
  case
    -- 1%: an abbreviation inside the name, an apostrophe
    when g % 100 = 0 then 'PT. A.B.C. ' || c3
    when g % 100 = 1 then 'CV D''' || c2 || ' ' || c3
    else (array['PT ', 'PT. ', 'P.T. ', 'CV ', 'CV. ', 'UD. ', '', 'PT.'])[1 + floor(r4 * 8)::int]
         || c1 || ' ' || c2 || (array['', ' ' || c3, '-' || c3, ' & ' || c3])[1 + floor(r5 * 4)::int]
         || (array['', '', ' Tbk', ' Tbk.', ' (Persero)', ', PT', ' (Persero) Tbk'])[1 + floor(r6 * 7)::int]
  end as company
from (
  select g, random() r1, random() r2, random() r3, random() r4, random() r5, random() r6,
         lpad(floor(random() * 1e15)::bigint::text, 15, '0') d,
         lpad(floor(random() * 1e11)::bigint::text, 11, '0') p,
         (array['Budi', 'Siti', 'Agus', 'Dewi', 'Rizky', 'Putri', 'Andi', 'Ayu', 'Hendra', 'Wulan'])[1 + floor(random() * 10)::int] fn,
         (array['Santoso', 'Rahma', 'Wijaya', 'Lestari', 'Pratama', 'Kusuma', 'Hidayat', 'Saputra'])[1 + floor(random() * 8)::int] ln,
         (array['gmail.com', 'yahoo.co.id', 'example.co.id', 'majujaya.com', 'outlook.com'])[1 + floor(random() * 5)::int] dom,
         (array['Maju', 'Sinar', 'Sumber', 'Bank', 'Karya', 'Mitra', 'Cahaya', 'Bintang', 'Nusa', 'Global'])[1 + floor(random() * 10)::int] c1,
         (array['Jaya', 'Abadi', 'Rejeki', 'Rakyat', 'Mandiri', 'Sentosa', 'Makmur', 'Teknologi'])[1 + floor(random() * 8)::int] c2,
         (array['Indonesia', 'Nusantara', 'Sejahtera', 'Utama', 'Prima', 'Logistik'])[1 + floor(random() * 6)::int] c3
    from generate_series(1, 1000000) g
  offset 0
) s
) v;

vacuum (freeze, analyze) bench_messy;

-- The SQL baselines: what one would write without the extension, cheap
-- translate() where it does the job and regexp_replace/lower/btrim for the
-- rest (the differences in behaviour are listed in
-- docs/benchmarks/extension-primitives.md). `offset 0`
-- keeps the cleaned value computed once per row.
create view bench_sql_npwp as
select v, case when d ~ '^[0-9]{15}$' then '0' || d
               when d ~ '^[0-9]{16}$' then d end as n
  from (select npwp as v, translate(npwp, E'. -\t', '') as d
          from bench_messy offset 0) s;

create view bench_sql_phone as
select v, case when d ~ '^(\+62|0062|62)0?[2-9][0-9]{6,11}$'
                 then '+62' || regexp_replace(d, '^(\+62|0062|62)0?', '')
               when d ~ '^0[2-9][0-9]{6,11}$' then '+62' || substr(d, 2) end as n
  from (select phone as v,
               translate(regexp_replace(phone, '\s*(extension|ext|psw|pes|x)[.:]?\s*[0-9]{1,6}\s*$', '', 'i'),
                         E' \t().-', '') as d
          from bench_messy offset 0) s;

create view bench_sql_email as
select v, case when e ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$'
                 then regexp_replace(e, '\+[^@]*@', '@') end as n
  from (select email as v, lower(btrim(email)) as e from bench_messy offset 0) s;

-- Legal forms at the start, then at the end: two anchored regexps (one
-- alternation `^…|…$` is about 1.5 times slower).
create view bench_sql_company as
select v, nullif(regexp_replace(regexp_replace(w,
                   '^((pt|cv|ud|tbk|persero|p t|c v|u d|perseroan terbatas) )+', ''),
                   '( (pt|cv|ud|tbk|persero|p t|c v|u d|perseroan terbatas))+$', ''), '') as n
  from (select company as v,
               btrim(regexp_replace(regexp_replace(lower(company), '[&''`´’]', '', 'g'),
                                    '[^[:alnum:]]+', ' ', 'g')) as w
          from bench_messy offset 0) s;
