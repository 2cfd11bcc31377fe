-- The SOP's due-date rule (AI-2): the due date is *after* the issue date.
--
-- The product spec (SPEC AI-2, from seeds 000/001: "Apakah tanggal jatuh
-- tempo logis?" / "Is the due date logical?") states the rule as "due date
-- after issue date and within terms". V29 seeded the due_date kind with
-- min_days 0, which let a due date on the issue date pass. An invoice due
-- the day it is issued is not a credit term at all; the rule now says
-- strictly after: min_days 1 by default. A tenant that accepts payment on
-- the issue date sets min_days 0 on its rule (PATCH /api/sop/rules/{id});
-- the semantics are stated once at the head of sql/api/precheck.sql.
--
-- One concern: the default of the kind and the data move of the rules that
-- still carry V29's default.

update sop_rule_kinds
   set defaults = jsonb_set(defaults, '{min_days}', '1'),
       description = 'The due date is after the issue date: at least min_days (default 1: the day after; 0 allows the issue date itself) after it, and at most the customer''s payment terms (customers.payment_terms_days, else default_terms_days; neither: no upper bound) after it.'
 where code = 'due_date';

-- Existing tenants: their due_date rule as V29 (or a tenant created since)
-- seeded it, never changed by anyone (its parameters are the old default
-- and it was not updated after its insert). A rule a tenant wrote or
-- edited keeps what the tenant chose.
update sop_rules s
   set parameters = jsonb_set(s.parameters, '{min_days}', '1')
 where s.kind = 'due_date'
   and s.name = 'due_date'
   and s.parameters = '{"min_days": 0}'::jsonb
   and s.updated_at = s.created_at;
