//! Files: an upload to a bucket, read by its owner and not by others, the
//! bucket's list (with the customer's document uploaded before).

use super::runner::{call, form, Bytes, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Sales, POST, "/api/objects", form(&[("bucket", "customer-documents")], "npwp.pdf", Bytes::Pdf(1024)), 201)
            .save("object", "/object_id"),
        call(Sales, GET,  "/api/objects/{object}", NONE, 200),
        call(Ops,   GET,  "/api/objects/{object}", NONE, 404),
        call(Sales, POST, "/api/objects", form(&[("bucket", "nope")], "x.pdf", Bytes::Pdf(10)), 422),
        call(Sales, GET,  "/api/objects?bucket=customer-documents", NONE, 200).at_least("/items", 2),
        call(Sales, GET,  "/api/objects?bucket=nope", NONE, 422),
    ]
}
