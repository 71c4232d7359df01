//! A parser for the subset of the Drive query language (`q`) the project sends: clauses joined by
//! `and`, each one of `name='..'`, `'..' in parents`, `mimeType='..'`, `trashed=true|false`,
//! `appProperties has { key='..' and value='..' }`. Anything else is refused, like Google's
//! "Invalid Value" for a malformed query.

/// One condition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `name = '...'`
    Name(String),
    /// `'...' in parents`
    InParents(String),
    /// `mimeType = '...'`
    MimeType(String),
    /// `trashed = true|false`
    Trashed(bool),
    /// `appProperties has { key='..' and value='..' }`
    AppProperty(String, String),
}

struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest.starts_with(token) {
            self.rest = &self.rest[token.len()..];
            true
        } else {
            false
        }
    }

    fn literal(&mut self) -> Result<String, String> {
        self.skip_ws();
        let mut chars = self.rest.char_indices();
        if chars.next().map(|(_, c)| c) != Some('\'') {
            return Err(format!("expected a quoted string at {:?}", self.rest));
        }
        let mut out = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, c) => {
                    out.push(c);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '\'') => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                (false, c) => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let end = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest.len());
        let (w, rest) = self.rest.split_at(end);
        self.rest = rest;
        w
    }
}

/// Parses `q` into its clauses (all of which must hold).
pub fn parse_query(q: &str) -> Result<Vec<Clause>, String> {
    let mut lx = Lexer { rest: q };
    let mut clauses = Vec::new();
    loop {
        lx.skip_ws();
        let clause = if lx.rest.starts_with('\'') {
            let id = lx.literal()?;
            if !(lx.eat("in") && lx.eat("parents")) {
                return Err("expected `in parents`".into());
            }
            Clause::InParents(id)
        } else {
            match lx.word() {
                "name" if lx.eat("=") => Clause::Name(lx.literal()?),
                "mimeType" if lx.eat("=") => Clause::MimeType(lx.literal()?),
                "trashed" if lx.eat("=") => match lx.word() {
                    "true" => Clause::Trashed(true),
                    "false" => Clause::Trashed(false),
                    other => return Err(format!("trashed must be true or false, not {other:?}")),
                },
                "appProperties" if lx.eat("has") && lx.eat("{") => {
                    if !(lx.word() == "key" && lx.eat("=")) {
                        return Err("expected key=".into());
                    }
                    let key = lx.literal()?;
                    if !(lx.eat("and") && lx.word() == "value" && lx.eat("=")) {
                        return Err("expected and value=".into());
                    }
                    let value = lx.literal()?;
                    if !lx.eat("}") {
                        return Err("expected }".into());
                    }
                    Clause::AppProperty(key, value)
                }
                other => return Err(format!("unsupported query term {other:?}")),
            }
        };
        clauses.push(clause);
        lx.skip_ws();
        if lx.rest.is_empty() {
            return Ok(clauses);
        }
        if !lx.eat("and ") {
            return Err(format!("expected `and` at {:?}", lx.rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_clients_queries() {
        let q = r"name='it\'s' and 'P1' in parents and mimeType='application/vnd.google-apps.folder' and trashed=false";
        assert_eq!(
            parse_query(q).unwrap(),
            vec![
                Clause::Name("it's".into()),
                Clause::InParents("P1".into()),
                Clause::MimeType("application/vnd.google-apps.folder".into()),
                Clause::Trashed(false),
            ]
        );
        let q = "appProperties has { key='onomancerKey' and value='k:1' } and trashed=false";
        assert_eq!(
            parse_query(q).unwrap()[0],
            Clause::AppProperty("onomancerKey".into(), "k:1".into())
        );
        assert!(parse_query("fullText contains 'x'").is_err());
    }
}
