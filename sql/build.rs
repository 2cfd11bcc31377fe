// `embed_migrations!` reads the directory at compile time; without this rule a
// new migration file would not be noticed until something else changed. The
// api files are included by name (src/api.rs); the rule on the directory
// also rebuilds when one is added, so the listing test can catch it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=api");
}
