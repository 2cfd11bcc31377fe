//! Imports: one good and one bad row, processed, read with its error.

use super::runner::{call, form, Bytes, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let csv = "external_ref,channel,company_name,contact_email\nR-1,website,PT Impor Satu,satu@impor.co.id\nR-2,pigeon,PT Impor Dua,dua@impor.co.id\n";
    vec![
        call(Marketing, POST, "/api/imports", form(&[("module", "leads")], "leads.csv", Bytes::Text(csv)), 201)
            .save("import", "/import_id").on_citus(501),
        call(Marketing, POST, "/api/imports/{import}/process", NONE, [200, 202]).single_node(),
        call(Marketing, GET, "/api/imports/{import}", NONE, 200).len("/errors", 1).single_node(),
        call(Marketing, POST, "/api/imports", form(&[("module", "planets")], "p.csv", Bytes::Text("a\n1\n")), 422).on_citus(501),
    ]
}
