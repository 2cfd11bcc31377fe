//! `#[pg_test]`s of the type, the operators and the index basics.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The operators live in schema bizos, as a database with bizos on its
    /// search_path sees them.
    fn path() {
        Spi::run("set local search_path = tests, public, bizos").unwrap();
    }

    fn text(sql: &str) -> Option<String> {
        path();
        Spi::get_one::<String>(sql).unwrap()
    }

    /// EXPLAIN (costs off) of `sql`, its lines joined by " | ".
    fn explain(sql: &str) -> String {
        Spi::run(
            "create or replace function pg_temp.plan_of(q text) returns setof text
               language plpgsql as $$ begin return query execute 'explain (costs off) ' || q; end $$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>(
            "select string_agg(l, ' | ') from pg_temp.plan_of($1) l",
            &[sql.into()],
        )
        .unwrap()
        .unwrap_or_default()
    }

    fn float(sql: &str) -> f64 {
        path();
        Spi::get_one::<f64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn text_io_and_typmod() {
        assert_eq!(
            text("select '[1, 2.5,-3]'::bizos.vector::text").as_deref(),
            Some("[1,2.5,-3]")
        );
        assert_eq!(
            text("select '[1,2,3]'::bizos.vector(3)::text").as_deref(),
            Some("[1,2,3]")
        );
        Spi::run("create temp table tv (v bizos.vector(3))").unwrap();
        assert_eq!(
            text("select format_type(atttypid, atttypmod) from pg_attribute where attrelid = 'tv'::regclass and attname = 'v'")
                .as_deref(),
            Some("vector(3)")
        );
    }

    #[pg_test(error = "expected 3 dimensions, not 2")]
    fn typmod_rejects_other_dimensions() {
        Spi::run("select '[1,2]'::bizos.vector(3)").unwrap();
    }

    #[pg_test(error = "expected 3 dimensions, not 2")]
    fn column_typmod_rejects_other_dimensions() {
        Spi::run("create temp table t3 (v bizos.vector(3)); insert into t3 values ('[1,2,3]'::bizos.vector(3)), (array[1,2]::real[])").unwrap();
    }

    #[pg_test(
        error = "bizos.vector element 2 \"NaN\" is not finite (NaN, infinity and values beyond the real range are not allowed)"
    )]
    fn nan_is_rejected() {
        Spi::run("select '[1,NaN]'::bizos.vector").unwrap();
    }

    #[pg_test(error = "different vector dimensions 2 and 3")]
    fn distances_need_equal_dimensions() {
        Spi::run("select '[1,2]'::bizos.vector operator(bizos.<->) '[1,2,3]'::bizos.vector")
            .unwrap();
    }

    #[pg_test]
    fn operators_and_casts() {
        assert!((float("select '[0,0]'::bizos.vector <-> '[3,4]'") - 5.0).abs() < 1e-9);
        assert!((float("select '[1,0]'::bizos.vector <=> '[0,1]'") - 1.0).abs() < 1e-9);
        assert!((float("select '[1,2]'::bizos.vector <#> '[3,4]'") + 11.0).abs() < 1e-9);
        assert!((float("select bizos.inner_product('[1,2]', '[3,4]')") - 11.0).abs() < 1e-9);
        assert!((float("select bizos.vector_norm('[3,4]')") - 5.0).abs() < 1e-9);
        assert_eq!(
            Spi::get_one::<i32>("select bizos.vector_dims('[1,2,3]')").unwrap(),
            Some(3)
        );
        assert_eq!(
            text("select array[1.5,2]::real[]::bizos.vector::text").as_deref(),
            Some("[1.5,2]")
        );
        assert_eq!(
            text("select array[1,2]::bizos.vector::text").as_deref(),
            Some("[1,2]")
        );
        assert_eq!(
            text("select '[1,2]'::bizos.vector::real[]::text").as_deref(),
            Some("{1,2}")
        );
        // Binary form: u16 dims, u16 reserved, big-endian f32s.
        assert_eq!(
            text("select bizos.vector_send('[1,2]')::text").as_deref(),
            Some("\\x000200003f80000040000000")
        );
        // send then recv, through COPY's binary format.
        Spi::run(
            "create temp table b1 as select '[1,-2.5,0.003]'::bizos.vector(3) v;
             copy b1 to '/tmp/bizos_vector_pgtest.bin' (format binary);
             create temp table b2 (v bizos.vector(3));
             copy b2 from '/tmp/bizos_vector_pgtest.bin' (format binary);",
        )
        .unwrap();
        assert_eq!(
            text("select v::text from b2").as_deref(),
            Some("[1,-2.5,0.003]")
        );
    }

    #[pg_test]
    fn index_scan_returns_every_row_in_order() {
        path();
        Spi::run(
            "create table items (id int, v bizos.vector(2));
             insert into items select g, array[cos(g), sin(g)]::real[] from generate_series(1, 500) g;
             create index on items using bizos_ivf (v bizos.vector_l2_ops) with (lists = 10);
             insert into items select g, array[cos(g) * 2, sin(g) * 2]::real[] from generate_series(501, 600) g;
             set enable_seqscan = off;
             set bizos.ivf_probes = 2;",
        )
        .unwrap();
        let plan = explain("select id from items order by v <-> '[1,0]' limit 5");
        assert!(
            plan.contains("Index Scan using items_v_idx"),
            "plan: {plan}"
        );
        // More rows than the first batch holds: the scan moves on to the next
        // lists until every row came back.
        let n: i64 = Spi::get_one(
            "select count(*) from (select id from items order by v <-> '[1,0]' limit 1000) s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 600);
        // A filter that leaves few rows still gets them all.
        let n: i64 = Spi::get_one(
            "select count(*) from (select id from items where id % 100 = 0 order by v <-> '[1,0]' limit 5) s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 5);
        // The nearest row comes first with probes covering every list.
        Spi::run("set bizos.ivf_probes = 10").unwrap();
        let first: i32 = Spi::get_one("select id from items order by v <-> '[2,0]' limit 1")
            .unwrap()
            .unwrap();
        let exact: i32 = Spi::get_one(
            "select id from (select id, v <-> '[2,0]' d from items) s order by d, id limit 1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(first, exact);
    }

    #[pg_test]
    fn vacuum_removes_dead_rows_and_opclasses_work() {
        path();
        Spi::run(
            "create table docs (id int, v bizos.vector(3));
             insert into docs select g, array[g, g % 7, 1]::real[] from generate_series(1, 300) g;
             create index docs_cos on docs using bizos_ivf (v bizos.vector_cosine_ops) with (lists = 4);
             create index docs_ip on docs using bizos_ivf (v bizos.vector_ip_ops) with (lists = 4);
             delete from docs where id <= 150;",
        )
        .unwrap();
        // VACUUM cannot run inside the test's transaction; the bulk-delete path
        // is covered by the integration tests. Deleted rows are invisible.
        Spi::run("set enable_seqscan = off").unwrap();
        let n: i64 = Spi::get_one(
            "select count(*) from (select id from docs order by v <=> '[1,1,1]' limit 500) s",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 150);
        let top: i32 = Spi::get_one("select id from docs order by v <#> '[1,0,0]' limit 1")
            .unwrap()
            .unwrap();
        assert_eq!(top, 300);
    }

    #[pg_test(error = "expected 2 dimensions, not 3")]
    fn index_rejects_other_dimensions() {
        Spi::run(
            "create table loose (v bizos.vector);
             insert into loose values ('[1,2]'), ('[3,4]');
             create index on loose using bizos_ivf (v) with (lists = 1);
             insert into loose values ('[1,2,3]');",
        )
        .unwrap();
    }

    #[pg_test]
    fn empty_and_unlogged_indexes() {
        path();
        Spi::run(
            "create unlogged table u (v bizos.vector(2));
             create index on u using bizos_ivf (v);
             insert into u values ('[1,1]'), ('[2,2]');
             set enable_seqscan = off;",
        )
        .unwrap();
        assert_eq!(
            text("select v::text from u order by v <-> '[2,2.1]' limit 1").as_deref(),
            Some("[2,2]")
        );
    }

    /// The number of lists `index` was built with (its meta page).
    fn lists_of(index: &str) -> u32 {
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("select '{index}'::regclass::oid"))
            .unwrap()
            .unwrap();
        unsafe {
            let rel = pg_sys::index_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let meta = crate::vector::am::index::read_meta(rel);
            pg_sys::index_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            meta.lists
        }
    }

    /// Distances of a query's rows, in the order the scan returned them.
    fn distances(sql: &str) -> Vec<f64> {
        Spi::get_one::<Vec<f64>>(&format!("select array_agg(d) from ({sql}) s"))
            .unwrap()
            .unwrap_or_default()
    }

    fn inversions(d: &[f64]) -> usize {
        d.windows(2).filter(|w| w[1] < w[0]).count()
    }

    /// Pages of `index` of each kind (meta, centroids, vectors, codes).
    fn page_kinds(index: &str) -> [u32; 5] {
        use crate::vector::am::{buffers, page};
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("select '{index}'::regclass::oid"))
            .unwrap()
            .unwrap();
        let mut kinds = [0u32; 5];
        unsafe {
            let rel = pg_sys::index_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            for block in 0..buffers::nblocks(rel) {
                let buf = buffers::Locked::read(rel, block, false);
                kinds[usize::from(page::kind(buf.page()))] += 1;
            }
            pg_sys::index_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        }
        kinds
    }

    #[pg_test]
    fn codes_rank_rows_as_their_exact_distances_do() {
        use crate::vector::am::page;
        path();
        Spi::run(
            "select setseed(0.25);
             create table coded (id int, v bizos.vector(100));
             insert into coded
               select g, (select array_agg((random() * 2 - 1)::real) from generate_series(1, 100) d where g > 0)
                 from generate_series(1, 3000) g;
             create index coded_l2 on coded using bizos_ivf (v bizos.vector_l2_ops) with (lists = 6);
             create index coded_cos on coded using bizos_ivf (v bizos.vector_cosine_ops) with (lists = 6);
             create index coded_ip on coded using bizos_ivf (v bizos.vector_ip_ops) with (lists = 6);
             -- After the build: these go through aminsert.
             insert into coded
               select g, (select array_agg((random() * 2 - 1)::real) from generate_series(1, 100) d where g > 0)
                 from generate_series(3001, 4000) g;
             create table probes as
               select q, (select array_agg((random() * 2 - 1)::real) from generate_series(1, 100) d where q > 0)::bizos.vector(100) v
                 from generate_series(1, 5) q;",
        )
        .unwrap();
        for index in ["coded_l2", "coded_cos", "coded_ip"] {
            let kinds = page_kinds(index);
            // 4,000 codes of 100 dimensions (16 bytes and a 32-byte head) take
            // more than 6 pages, one chain per list.
            assert!(
                kinds[usize::from(page::KIND_CODES)] > 6,
                "{index}: {kinds:?}"
            );
        }
        Spi::run("set bizos.ivf_probes = 6").unwrap();
        let mut differ = 0;
        for op in ["<->", "<=>", "<#>"] {
            for q in 1..=5 {
                let sql = format!(
                    "select array_agg(id) from (select id from coded order by v {op} (select v from probes where q = {q}) limit 40) s"
                );
                Spi::run("set enable_seqscan = on; set enable_indexscan = off").unwrap();
                let exact = Spi::get_one::<Vec<i32>>(&sql).unwrap().unwrap();
                Spi::run("set enable_seqscan = off; set enable_indexscan = on").unwrap();
                assert!(explain(&sql).contains("Index Scan using coded_"), "{op}");
                let index = Spi::get_one::<Vec<i32>>(&sql).unwrap().unwrap();
                // Every list in one batch: the codes' estimates decide only
                // which rows are re-ranked, so the rows and their order are
                // the exact ones, but for a row whose error bound failed
                // (about 1 in 10^3 candidates), which comes a few places
                // late.
                assert_eq!(index.len(), 40, "{op} query {q}");
                differ += usize::from(index != exact);
            }
        }
        // At most one of the 15 answers differs (none with this data).
        assert!(
            differ <= 1,
            "{differ} of 15 answers differ from exact search"
        );
    }

    #[pg_test]
    fn settings_exist_once_the_library_is_loaded() {
        // The library is loaded (this test is one of its functions), no
        // index has been used in this session: the settings are there,
        // with their defaults.
        assert_eq!(text("show bizos.ivf_probes").as_deref(), Some("0"));
        assert_eq!(text("show bizos.ivf_strict_order").as_deref(), Some("off"));
        Spi::run("set bizos.ivf_probes = 3").unwrap();
        assert_eq!(text("show bizos.ivf_probes").as_deref(), Some("3"));
    }

    #[pg_test(error = "invalid configuration parameter name \"bizos.ivf_probe\"")]
    fn a_misspelled_setting_is_an_error() {
        Spi::run("set bizos.ivf_probe = 3").unwrap();
    }

    #[pg_test]
    fn lists_and_probes_default_to_the_size_of_the_table() {
        use crate::vector::am::options::{default_lists, probes};
        assert_eq!(default_lists(0.0), 1);
        assert_eq!(default_lists(249.0), 1);
        assert_eq!(default_lists(50_000.0), 200);
        assert_eq!(default_lists(250_000.0), 1000);
        assert_eq!(default_lists(1_000_000.0), 2000);
        assert_eq!(default_lists(4_000_000.0), 4000);
        assert_eq!(default_lists(1e12), 32_768);
        // bizos.ivf_probes = 0 (the default): 2.5 times the square root of
        // the lists, at most all of them.
        assert_eq!(probes(100), 25);
        assert_eq!(probes(400), 50);
        assert_eq!(probes(1000), 80);
        assert_eq!(probes(4), 4);
        assert_eq!(probes(1), 1);

        path();
        Spi::run(
            "create table sized (id int, v bizos.vector(2));
             insert into sized select g, array[cos(g), sin(g)]::real[] from generate_series(1, 3500) g;
             create index sized_auto on sized using bizos_ivf (v bizos.vector_l2_ops);
             create index sized_zero on sized using bizos_ivf (v bizos.vector_l2_ops) with (lists = 0);
             create index sized_given on sized using bizos_ivf (v bizos.vector_l2_ops) with (lists = 7);
             create table nothing (v bizos.vector(2));
             create index nothing_auto on nothing using bizos_ivf (v bizos.vector_l2_ops);",
        )
        .unwrap();
        // Counted rows, not the estimate of a table never analyzed.
        assert_eq!(lists_of("sized_auto"), 14);
        assert_eq!(lists_of("sized_zero"), 14);
        assert_eq!(lists_of("sized_given"), 7);
        assert_eq!(lists_of("nothing_auto"), 1);
    }

    #[pg_test]
    fn strict_order_returns_filtered_rows_in_distance_order() {
        path();
        Spi::run(
            "create table ring (id int, v bizos.vector(2));
             insert into ring select g, array[cos(g) * (1 + g % 5), sin(g) * (1 + g % 5)]::real[]
               from generate_series(1, 2000) g;
             create index on ring using bizos_ivf (v bizos.vector_l2_ops) with (lists = 20);
             set enable_seqscan = off;
             set bizos.ivf_probes = 1;",
        )
        .unwrap();
        let query =
            "select v <-> '[3,0.5]' d from ring where id % 7 = 0 order by v <-> '[3,0.5]' limit 60";
        // Off: later batches bring rows nearer than some already returned
        // (the fixture must show it, or the strict check below proves
        // nothing).
        let relaxed = distances(query);
        assert_eq!(relaxed.len(), 60, "relaxed: {relaxed:?}");
        assert!(inversions(&relaxed) > 0, "{relaxed:?}");
        // On: exact distance order. Rows of later batches nearer than one
        // already returned are skipped, so there may be fewer rows than the
        // limit (as with pgvector's strict_order), never more.
        Spi::run("set bizos.ivf_strict_order = on").unwrap();
        let strict = distances(query);
        assert_eq!(inversions(&strict), 0, "strict: {strict:?}");
        assert!(
            !strict.is_empty() && strict.len() <= 60,
            "strict: {strict:?}"
        );
        // The nearest row of the first batch comes first, as without it.
        assert_eq!(strict[0], relaxed[0], "{strict:?} {relaxed:?}");
    }

    #[pg_test]
    fn a_selective_filter_gets_the_exact_plan_and_a_loose_one_the_index() {
        path();
        Spi::run(
            "create table scoped (tenant int, id int, v bizos.vector(64));
             insert into scoped
               select g % 100, g, (select array_agg(sin(g * 31 + d)::real) from generate_series(1, 64) d)
                 from generate_series(1, 100000) g;
             create index scoped_tenant on scoped (tenant);
             create index scoped_v on scoped using bizos_ivf (v bizos.vector_l2_ops);
             analyze scoped;",
        )
        .unwrap();
        let q = "(select array_agg(cos(d)::real) from generate_series(1, 64) d)::bizos.vector";
        let plan = |filter: &str| {
            explain(&format!(
                "select id from scoped {filter} order by v <-> {q} limit 10"
            ))
        };
        let unfiltered = plan("");
        assert!(
            unfiltered.contains("Index Scan using scoped_v"),
            "{unfiltered}"
        );
        // Half the rows pass: the first batch finds 10 of them.
        let loose = plan("where tenant < 50");
        assert!(loose.contains("Index Scan using scoped_v"), "{loose}");
        // One tenant of a hundred: the index would return about a thousand
        // rows to find ten; the tenant's thousand rows through their own
        // index and a top-10 sort are cheaper, and exact.
        let selective = plan("where tenant = 7");
        assert!(!selective.contains("scoped_v"), "{selective}");
        assert!(selective.contains("scoped_tenant"), "{selective}");
    }

    /// `bizos.ivf_index_state`: (trained rows, current rows, lists, lists
    /// after a rebuild, needs a rebuild, reason).
    fn state(index: &str) -> (i64, i64, i32, i32, bool, Option<String>) {
        path();
        Spi::connect(|c| {
            let r = c
                .select(
                    &format!(
                        "select trained_rows, current_rows, lists, lists_after_rebuild, needs_retrain, reason
                           from bizos.ivf_index_state('{index}')"
                    ),
                    None,
                    &[],
                )
                .unwrap()
                .first();
            (
                r.get::<i64>(1).unwrap().unwrap(),
                r.get::<i64>(2).unwrap().unwrap(),
                r.get::<i32>(3).unwrap().unwrap(),
                r.get::<i32>(4).unwrap().unwrap(),
                r.get::<bool>(5).unwrap().unwrap(),
                r.get::<String>(6).unwrap(),
            )
        })
    }

    #[pg_test]
    fn the_state_says_when_the_lists_no_longer_fit_the_table() {
        path();
        Spi::run(
            "create table grown (id int, v bizos.vector(2));
             create index grown_empty on grown using bizos_ivf (v bizos.vector_l2_ops);
             insert into grown select g, array[cos(g), sin(g)]::real[] from generate_series(1, 2000) g;
             create index grown_v on grown using bizos_ivf (v bizos.vector_l2_ops);",
        )
        .unwrap();
        // Built on 2,000 rows: trained on them, 8 lists, nothing to do.
        assert_eq!(state("grown_v"), (2000, 2000, 8, 8, false, None));
        // Built on the empty table: one list, trained on nothing.
        let (trained, rows, lists, after, needs, reason) = state("grown_empty");
        assert_eq!((trained, rows, lists, after, needs), (0, 2000, 1, 8, true));
        assert!(reason.unwrap().contains("trained on no rows"));
        // Grown by 1,500 rows (1.75 times): a rebuild is due, with 14 lists.
        Spi::run(
            "insert into grown select g, array[cos(g), sin(g)]::real[] from generate_series(2001, 3500) g",
        )
        .unwrap();
        let (trained, rows, lists, after, needs, reason) = state("grown_v");
        assert_eq!(
            (trained, rows, lists, after, needs),
            (2000, 3500, 8, 14, true)
        );
        assert!(reason.unwrap().contains("1.75 times"));
        // Rebuilt: trained on every row again.
        Spi::run("reindex index grown_v").unwrap();
        assert_eq!(state("grown_v"), (3500, 3500, 14, 14, false, None));
    }

    #[pg_test(error = "\"grown_btree\" is not a bizos_ivf index")]
    fn the_state_is_only_of_ivf_indexes() {
        path();
        Spi::run(
            "create table grown (id int); create index grown_btree on grown (id);
             select * from bizos.ivf_index_state('grown_btree')",
        )
        .unwrap();
    }

    /// 1,200 real sentence embeddings: WordNet glosses embedded by the
    /// knowledge base's model (all-MiniLM-L6-v2, 384 dimensions), each
    /// coordinate rounded to a signed byte (`fixtures/README.md`).
    const GLOSSES: &[u8] = include_bytes!("fixtures/wordnet-glosses-1200x384.i8");

    fn load_glosses() {
        let dims = 384;
        let rows: Vec<String> = GLOSSES
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, v)| {
                let floats: Vec<String> = v.iter().map(|&b| (b as i8).to_string()).collect();
                format!("({}, '[{}]')", i + 1, floats.join(","))
            })
            .collect();
        path();
        Spi::run("create table glosses (id int, v bizos.vector(384))").unwrap();
        for chunk in rows.chunks(200) {
            Spi::run(&format!("insert into glosses values {}", chunk.join(","))).unwrap();
        }
    }

    /// Queries (every row's vector) whose `order by v <=> q limit 20`
    /// through the index differs from exact search: other rows, or the
    /// same rows in another order.
    fn differing_answers() -> i64 {
        let q = "select g.id, array(select o.id from glosses o order by o.v <=> g.v limit 20) ids from glosses g";
        Spi::run(&format!(
            "set local enable_indexscan = off; set local enable_seqscan = on;
             create temp table exact as {q};
             set local enable_indexscan = on; set local enable_seqscan = off;
             create temp table by_index as {q};"
        ))
        .unwrap();
        let n = Spi::get_one::<i64>(
            "select count(*) from exact e join by_index i using (id) where e.ids is distinct from i.ids",
        )
        .unwrap()
        .unwrap();
        Spi::run("drop table exact, by_index").unwrap();
        n
    }

    #[pg_test]
    fn every_list_probed_gives_the_exact_answer_on_real_embeddings() {
        load_glosses();
        Spi::run(
            "create index glosses_v on glosses using bizos_ivf (v bizos.vector_cosine_ops) with (lists = 8);
             set local bizos.ivf_probes = 8;",
        )
        .unwrap();
        Spi::run("set local enable_seqscan = off").unwrap();
        let plan = explain(
            "select id from glosses order by v <=> (select v from glosses where id = 1) limit 20",
        );
        assert!(plan.contains("Index Scan using glosses_v"), "{plan}");
        // With every list in the first batch the scan has found every row:
        // each answer must be the exact top 20, in exact order, whether
        // strict order is on or off.
        assert_eq!(differing_answers(), 0);
        Spi::run("set local bizos.ivf_strict_order = on").unwrap();
        assert_eq!(differing_answers(), 0);
        // The fixture shows the defect at the old margin (3 units of a
        // code's error): a nearer row whose code erred by more was
        // re-ranked after a farther one had been returned, so it came late
        // (strict order off) or was dropped (on). Otherwise the checks
        // above would prove nothing.
        Spi::run(
            "set local bizos.ivf_rerank_confidence = 3; set local bizos.ivf_strict_order = off",
        )
        .unwrap();
        assert!(differing_answers() > 0);
        Spi::run("set local bizos.ivf_strict_order = on").unwrap();
        assert!(differing_answers() > 0);
    }
}
