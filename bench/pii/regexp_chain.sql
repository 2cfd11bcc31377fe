-- The baseline of the PII benchmark: what pii_mask does, written as a chain
-- of regexp_replace calls in SQL (PostgreSQL's ARE regular expressions), one
-- pattern per type, most specific first. No checksums (Luhn, NPWP check
-- digit) and no context scoring: a SQL chain cannot do those cheaply, so this
-- baseline does less work than pii_mask, not more.
create function bench_regexp_mask(t text) returns text
language sql immutable strict parallel safe
as $$
  select regexp_replace(
         regexp_replace(
         regexp_replace(
         regexp_replace(
         regexp_replace(
         regexp_replace(t,
           '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}',
           '[REDACTED_EMAIL]', 'g'),
           '\m[0-9]{2}\.[0-9]{3}\.[0-9]{3}\.[0-9]-[0-9]{3}\.[0-9]{3}\M',
           '[REDACTED_NPWP]', 'g'),
           '\m(1[1-9]|21|3[1-6]|5[1-3]|6[1-5]|7[1-6]|8[12]|9[1-6])[0-9]{2}[ .-]?[0-9]{2}[ .-]?(0[1-9]|[12][0-9]|3[01]|4[1-9]|[56][0-9]|7[01])(0[1-9]|1[0-2])[0-9]{2}[ .-]?[0-9]{4}\M',
           '[REDACTED_NIK]', 'g'),
           '\m(4[0-9]{3}|5[1-5][0-9]{2}|2[2-7][0-9]{2}|3[47][0-9]{2}|35[0-9]{2}|6011)[ -]?[0-9]{4,6}[ -]?[0-9]{4,5}([ -]?[0-9]{1,4})?\M',
           '[REDACTED_CARD]', 'g'),
           '(\+62|\m62|\m0|\(0)[ -]?[0-9]{2,4}\)?[ .-]?[0-9]{3,4}[ .-]?[0-9]{3,5}\M',
           '[REDACTED_PHONE]', 'g'),
           '((rekening|\mrek\.?|\mnorek|account no\.?)[^0-9\n]{0,25})[0-9][0-9 .-]{4,20}[0-9]',
           '\1[REDACTED_BANK_ACCOUNT]', 'gi')
$$;
