//! Open connections of a fleet run, kept for the next placement of the
//! same database: a new connection reads the catalogue's base entries cold
//! and costs a tenant schema more than its migration. At most `cap` are
//! kept (the oldest closed first), so a run over a hundred databases does
//! not hold a connection to each.

use std::collections::VecDeque;

use bizos_sql::fleet::Session;
use tokio::sync::Mutex;

pub struct Sessions {
    idle: Mutex<VecDeque<(String, Session)>>,
    cap: usize,
}

impl Sessions {
    pub fn new(cap: usize) -> Self {
        Sessions {
            idle: Mutex::new(VecDeque::new()),
            cap: cap.max(1),
        }
    }

    /// A kept connection to `dsn`, or a new one.
    pub async fn take(&self, dsn: &str) -> Result<Session, bizos_sql::Error> {
        let kept = {
            let mut idle = self.idle.lock().await;
            idle.iter()
                .position(|(d, s)| d == dsn && s.is_open())
                .and_then(|i| idle.remove(i))
        };
        match kept {
            Some((_, session)) => Ok(session),
            None => Session::connect(dsn).await,
        }
    }

    /// Keeps `session` for the next placement of `dsn`. Only a session whose
    /// work succeeded comes back: after an error it may be inside a failed
    /// transaction.
    pub async fn put(&self, dsn: &str, session: Session) {
        let closing = {
            let mut idle = self.idle.lock().await;
            idle.push_back((dsn.to_owned(), session));
            let over = idle.len().saturating_sub(self.cap);
            idle.drain(..over).collect::<Vec<_>>()
        };
        for (_, s) in closing {
            s.close().await;
        }
    }

    /// Closes every kept connection.
    pub async fn close(&self) {
        let all: Vec<_> = self.idle.lock().await.drain(..).collect();
        for (_, s) in all {
            s.close().await;
        }
    }
}
