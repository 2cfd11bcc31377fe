-- Annual billing (docs/billing.md#annual-billing): a subscription billed
-- by the year has an annual window of terms of twelve calendar months
-- from annual_from; its plan fee is billed in advance, a term at a time,
-- and its usage still monthly. A change of interval takes effect at a
-- period's boundary: to annual from the next period, back to monthly at
-- the end of the term running (annual_until).
alter table subscriptions
  add column annual_from  date,
  add column annual_until date,
  -- terms of whole years from the first of a month
  add constraint subscriptions_annual_window_check check (
    (annual_from is null and annual_until is null)
    or (extract(day from annual_from) = 1
        and (annual_until is null
             or (annual_until > annual_from
                 and extract(day from annual_until) = 1
                 and extract(month from annual_until) = extract(month from annual_from))))),
  -- annual: terms that renew; monthly: none, or a last term running out
  add constraint subscriptions_billing_interval_check check (
    (billing_interval = 'annual') = (annual_from is not null and annual_until is null));
comment on column subscriptions.annual_from is
  'The first day billed by the year (a period''s start): terms of twelve calendar months run from it. NULL: billed monthly.';
comment on column subscriptions.annual_until is
  'The end of the last annual term (a term''s end) once the interval goes back to monthly; NULL: the terms renew.';

insert into billing_line_kinds (code, position, description) values
  ('credit', 4, 'the part of an annual term''s fee billed before and replaced by the lines of a plan change (never more than they add)')
on conflict (code) do nothing;
