//! A SQL script cut into its statements, for servers that must receive one
//! statement at a time: Citus propagates DDL on a distributed table (CREATE
//! INDEX, CREATE TRIGGER, ALTER TABLE …) by sending the *whole* query string
//! to the shards, so a migration sent as one multi-statement batch fails
//! there ("cannot insert multiple commands into a prepared statement").
//!
//! The cutting is sqlparser's PostgreSQL tokenizer (quotes, dollar-quoted
//! bodies, comments): a semicolon outside all of them ends a statement.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, Tokenizer, Whitespace};

/// The script could not be tokenized (an unterminated quote, say).
#[derive(Debug, thiserror::Error)]
#[error("cannot cut the script into statements: {0}")]
pub struct SplitError(String);

/// The statements of `script`, each without its closing semicolon and
/// trimmed; comments stay with the statement they precede, and pieces that
/// hold nothing but comments and white space are left out.
pub fn split(script: &str) -> Result<Vec<&str>, SplitError> {
    let dialect = PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, script)
        .tokenize_with_location()
        .map_err(|e| SplitError(e.to_string()))?;
    let offsets = Offsets::new(script);
    let mut statements = Vec::new();
    let mut start = 0;
    let mut substantive = false;
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let end = offsets.byte(t.span.start);
                if substantive {
                    statements.push(script[start..end].trim());
                }
                start = end + 1;
                substantive = false;
            }
            Token::Whitespace(
                Whitespace::Space
                | Whitespace::Newline
                | Whitespace::Tab
                | Whitespace::SingleLineComment { .. }
                | Whitespace::MultiLineComment(_),
            ) => {}
            _ => substantive = true,
        }
    }
    if substantive {
        statements.push(script[start..].trim());
    }
    Ok(statements)
}

/// Byte offsets of the tokenizer's (line, column) locations, both counted
/// from 1 in characters.
struct Offsets<'a> {
    script: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Offsets<'a> {
    fn new(script: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(script.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            script,
            line_starts,
        }
    }

    fn byte(&self, at: Location) -> usize {
        let line_start = self.line_starts[usize::try_from(at.line).unwrap_or(1) - 1];
        let column = usize::try_from(at.column).unwrap_or(1) - 1;
        self.script[line_start..]
            .char_indices()
            .nth(column)
            .map_or(self.script.len(), |(i, _)| line_start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn semicolons_inside_quotes_bodies_and_comments_do_not_cut() {
        let script = "-- a; comment\ncreate table t (a text default 'x;y', \"b;\" int);\n\
            create function f() returns int language plpgsql as $body$ begin return 1; end $body$;\n\
            /* block; /* nested; */ still */ select E'it\\'s; fine', $$a;b$$, 'é;ü';\n\
            -- only a comment;\n  ;\nselect 2";
        let got = split(script).unwrap();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with("-- a; comment\ncreate table t"));
        assert!(got[0].ends_with("\"b;\" int)"));
        assert!(got[1].ends_with("end $body$"));
        assert!(got[2].ends_with("'é;ü'"), "{}", got[2]);
        assert_eq!(got[3], "select 2");
    }

    #[test]
    fn every_migration_and_api_file_cuts_into_statements() {
        use crate::API_FILES;
        for file in API_FILES {
            let statements = split(file.sql).unwrap_or_else(|e| panic!("{}: {e}", file.name));
            assert!(!statements.is_empty(), "{}", file.name);
        }
        for m in crate::embedded::migrations::runner().get_migrations() {
            let sql = m.sql().expect("embedded migrations carry their text");
            let statements = split(sql).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
            assert!(!statements.is_empty(), "{}", m.name());
        }
    }
}
