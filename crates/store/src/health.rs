//! Release health: the sessions SDKs report (one `session` per run of an app, or `sessions`
//! aggregates counted by the SDK per request), counted per release, with the crash-free rates
//! people read a release by.

use crate::ProjectId;

/// How a session ended, from best to worst: a session's status is the worst of its updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SessionStatus {
    Ok = 0,
    Exited = 1,
    Errored = 2,
    Abnormal = 3,
    Crashed = 4,
}

impl SessionStatus {
    /// The protocol's names; anything else is not a session status.
    pub fn parse(s: &str) -> Option<SessionStatus> {
        Some(match s {
            "ok" => SessionStatus::Ok,
            "exited" => SessionStatus::Exited,
            "errored" => SessionStatus::Errored,
            "abnormal" => SessionStatus::Abnormal,
            "crashed" => SessionStatus::Crashed,
            _ => return None,
        })
    }

    pub fn code(self) -> i64 {
        self as i64
    }
}

/// One update of one session (`session` items): the updates of a session id make one session.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSession {
    pub project_id: ProjectId,
    pub sid: String,
    /// The user (`did`), when the SDK knows one.
    pub did: Option<String>,
    pub release: String,
    pub environment: String,
    /// Unix seconds when the session started.
    pub started: f64,
    pub status: SessionStatus,
    /// It saw an error (`errors` > 0, or status errored).
    pub errored: bool,
}

/// Sessions the SDK counted itself (`sessions` items): of one release, environment, start
/// (rounded by the SDK) and user.
#[derive(Clone, Debug, PartialEq)]
pub struct NewSessionCounts {
    pub project_id: ProjectId,
    pub release: String,
    pub environment: String,
    pub started: f64,
    pub did: Option<String>,
    pub exited: u64,
    pub errored: u64,
    pub abnormal: u64,
    pub crashed: u64,
}

/// A release's health over an interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReleaseHealth {
    pub release: String,
    pub sessions: u64,
    /// Saw an error but did not crash.
    pub errored: u64,
    pub abnormal: u64,
    pub crashed: u64,
    /// Distinct users (of the sessions that name one), and those with a crashed session.
    pub users: u64,
    pub crashed_users: u64,
}

impl ReleaseHealth {
    /// Sessions that did not crash, in percent (none without sessions).
    pub fn crash_free_sessions(&self) -> Option<f64> {
        crash_free(self.crashed, self.sessions)
    }

    /// Users none of whose sessions crashed, in percent.
    pub fn crash_free_users(&self) -> Option<f64> {
        crash_free(self.crashed_users, self.users)
    }
}

/// One day of a release's (or a project's) sessions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthDay {
    /// Unix seconds of the day's start (UTC).
    pub day: f64,
    pub health: ReleaseHealth,
}

fn crash_free(bad: u64, all: u64) -> Option<f64> {
    (all > 0).then(|| 100.0 * (all - bad.min(all)) as f64 / all as f64)
}

/// The one query of release health, for both backends: every session row and count row since
/// `?2` (PostgreSQL: `$2`), grouped by `{key}` (an expression of `release` and `started`).
pub(crate) fn health_sql(key: &str, release_filter: &str) -> String {
    format!(
        "WITH s AS (
            SELECT release, started, did, 1 AS n,
                   CASE WHEN errored = 1 AND status < 3 THEN 1 ELSE 0 END AS errored,
                   CASE WHEN status = 3 THEN 1 ELSE 0 END AS abnormal,
                   CASE WHEN status = 4 THEN 1 ELSE 0 END AS crashed
            FROM release_sessions WHERE project_id = {p1} AND received >= {p2} {release_filter}
            UNION ALL
            SELECT release, started, NULLIF(did, ''), exited + errored + abnormal + crashed, errored, abnormal, crashed
            FROM release_session_counts WHERE project_id = {p1} AND received >= {p2} {release_filter}
         )
         SELECT {key} AS k, CAST(SUM(n) AS BIGINT), CAST(SUM(errored) AS BIGINT), CAST(SUM(abnormal) AS BIGINT), CAST(SUM(crashed) AS BIGINT),
                COUNT(DISTINCT did), COUNT(DISTINCT CASE WHEN crashed > 0 THEN did END)
         FROM s GROUP BY k ORDER BY k",
        p1 = "$1",
        p2 = "$2",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_free_rates_are_percentages_of_what_was_seen() {
        let h = ReleaseHealth { sessions: 200, crashed: 3, users: 50, crashed_users: 2, ..ReleaseHealth::default() };
        assert_eq!(h.crash_free_sessions(), Some(98.5));
        assert_eq!(h.crash_free_users(), Some(96.0));
        assert_eq!(ReleaseHealth::default().crash_free_sessions(), None);
        assert!(SessionStatus::Crashed > SessionStatus::Abnormal && SessionStatus::Exited > SessionStatus::Ok);
    }
}
