// `embed_migrations!` reads the directory at compile time; without this rule a
// new migration file would not be noticed until something else changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
