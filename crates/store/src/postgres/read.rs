//! The read side: a group with its duration statistics and tag values; events of a group,
//! paged; an event by id; activity and item counts; series, new and trending groups.

use tokio_postgres::Row;

use super::PgStore;
use super::stream::{environment_count_on, group_series_on, interval_count_on, stream_sql};
use crate::{
    Activity, Cursor, DurationStats, EventNav, EventRow, GroupId, GroupRow, HistogramBar, ProjectId, Resolution, Result, Sort,
    StreamPage, StreamQuery, StreamRow, TagCount, Trending, histogram,
};

pub(super) const GROUP_COLUMNS: &str = "g.id, g.project_id, g.hash, g.kind, g.title, g.culprit, g.level, g.logger, g.status,
    g.times_seen, g.first_seen, g.last_seen, g.ts_count, g.ts_sum, g.ts_min, g.ts_max, g.last_event_id, g.components";

/// A group row with its raw duration columns (count, sum, min, max).
pub(super) type RawGroup = (GroupRow, i64, f64, Option<f64>, Option<f64>);

pub(super) fn group_from(r: &Row) -> RawGroup {
    let row = GroupRow {
        id: GroupId(r.get(0)),
        project_id: ProjectId(r.get(1)),
        hash: r.get(2),
        kind: r.get(3),
        title: r.get(4),
        culprit: r.get(5),
        level: r.get(6),
        logger: r.get(7),
        status: crate::GroupStatus::of_code(r.get(8)),
        count: r.get::<_, i64>(9).max(0) as u64,
        first_seen: r.get(10),
        last_seen: r.get(11),
        time_spent: None,
        last_event_id: r.get(16),
        components: r.get(17),
    };
    (row, r.get(12), r.get(13), r.get(14), r.get(15))
}

pub(super) async fn with_durations(c: &tokio_postgres::Client, raw: RawGroup) -> Result<GroupRow> {
    let (mut row, count, sum, min, max) = raw;
    if count > 0 {
        let buckets: Vec<(i64, u64)> = c
            .query("SELECT bucket, count FROM group_durations WHERE group_id = $1 ORDER BY bucket", &[&row.id.0])
            .await?
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1).max(0) as u64))
            .collect();
        row.time_spent = Some(DurationStats::from_histogram(count, sum, min, max, &buckets));
    }
    Ok(row)
}

/// The columns [`event_from`] reads.
pub(super) const EVENT_COLUMNS: &str = "event_id, project_id, group_id, kind, timestamp, received, level, title, time_spent, payload, id, tags_len";

/// An event row, its blob decompressed into its tags and payload.
pub(super) fn event_from(r: &Row) -> EventRow {
    let id: Vec<u8> = r.get(0);
    let blob: Vec<u8> = r.get(9);
    let data = zstd::stream::decode_all(&blob[..]).unwrap_or_default();
    let tags_len = usize::try_from(r.get::<_, i64>(11)).unwrap_or(0).min(data.len());
    EventRow {
        event_id: hex::encode(id),
        project_id: ProjectId(r.get(1)),
        group_id: GroupId(r.get(2)),
        position: r.get(10),
        kind: r.get(3),
        timestamp: r.get(4),
        received: r.get(5),
        level: r.get(6),
        title: r.get(7),
        tags: serde_json::from_slice(&data[..tags_len]).unwrap_or_default(),
        time_spent: r.get(8),
        payload: data[tags_len..].to_vec(),
    }
}

/// A group's all-time distinct users and its assignee.
pub(super) async fn assignee_on(c: &impl deadpool_postgres::GenericClient, group_id: i64) -> Result<(u64, Option<crate::Assignee>)> {
    let row = c.query_opt("SELECT users, assigned_user, assigned_team FROM groups WHERE id = $1", &[&group_id]).await?;
    let Some(row) = row else { return Err(crate::StoreError::NotFound(format!("group {group_id}"))) };
    let assignee = match (row.get::<_, Option<i64>>(1), row.get::<_, Option<i64>>(2)) {
        (Some(u), _) => Some(crate::Assignee::User(crate::UserId(u))),
        (None, Some(t)) => Some(crate::Assignee::Team(crate::TeamId(t))),
        _ => None,
    };
    Ok((row.get::<_, i64>(0).max(0) as u64, assignee))
}

impl crate::Reads for PgStore {
    fn group_assignee(&self, id: GroupId) -> Result<Option<crate::Assignee>> {
        self.with(async |c| Ok(assignee_on(c, id.0).await?.1))
    }

    fn group(&self, id: GroupId) -> Result<Option<GroupRow>> {
        self.with(async |c| {
            let row = c.query_opt(&format!("SELECT {GROUP_COLUMNS} FROM groups g WHERE g.id = $1"), &[&id.0]).await?;
            match row {
                Some(r) => Ok(Some(with_durations(c, group_from(&r)).await?)),
                None => Ok(None),
            }
        })
    }

    fn group_tags(&self, group_id: GroupId, per_key: usize) -> Result<Vec<(String, Vec<TagCount>)>> {
        self.with(async |c| {
            let rows = c
                .query("SELECT key, value, count FROM group_tags WHERE group_id = $1 ORDER BY key, count DESC, value", &[&group_id.0])
                .await?;
            Ok(crate::query::per_key(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))), per_key))
        })
    }

    fn group_events(&self, group_id: GroupId, before: Option<i64>, limit: usize) -> Result<Vec<EventRow>> {
        self.with(async |c| {
            let rows = c
                .query(
                    &format!("SELECT {EVENT_COLUMNS} FROM events WHERE group_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"),
                    &[&group_id.0, &before.unwrap_or(i64::MAX), &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(event_from).collect())
        })
    }

    fn event_nav(&self, group_id: GroupId, position: i64) -> Result<EventNav> {
        self.with(async |c| {
            let mut ids = Vec::new();
            for sql in ["id < $2 ORDER BY id ASC", "id < $2 ORDER BY id DESC", "id > $2 ORDER BY id ASC", "id > $2 ORDER BY id DESC"] {
                let row = c.query_opt(&format!("SELECT event_id FROM events WHERE group_id = $1 AND {sql} LIMIT 1"), &[&group_id.0, &position]).await?;
                ids.push(row.map(|r| hex::encode(r.get::<_, Vec<u8>>(0))));
            }
            let [oldest, older, newer, newest] = <[Option<String>; 4]>::try_from(ids).unwrap_or_default();
            Ok(EventNav { oldest, older, newer, newest })
        })
    }

    fn event(&self, project_id: ProjectId, event_id: &protocol::EventId) -> Result<Option<EventRow>> {
        self.with(async |c| {
            // `event_ids` knows the partition: only that one is searched.
            let row = c
                .query_opt(
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events
                         WHERE project_id = $1 AND event_id = $2
                           AND received = (SELECT received FROM event_ids WHERE project_id = $1 AND event_id = $2)"
                    ),
                    &[&project_id.0, &&event_id.0[..]],
                )
                .await?;
            Ok(row.as_ref().map(event_from))
        })
    }

    fn event_count(&self, project_id: ProjectId) -> Result<u64> {
        self.with(async |c| {
            let n: i64 = c.query_one("SELECT COUNT(*) FROM events WHERE project_id = $1", &[&project_id.0]).await?.get(0);
            Ok(n.max(0) as u64)
        })
    }

    fn activity(&self, group_id: GroupId) -> Result<Vec<Activity>> {
        self.with(async |c| {
            let rows = c
                .query("SELECT group_id, kind, at, id, actor, data FROM group_activity WHERE group_id = $1 ORDER BY id", &[&group_id.0])
                .await?;
            Ok(rows
                .iter()
                .map(|r| Activity {
                    group_id: GroupId(r.get(0)),
                    kind: r.get(1),
                    at: r.get(2),
                    id: r.get(3),
                    actor: r.get::<_, Option<i64>>(4).map(crate::UserId),
                    data: r.get(5),
                })
                .collect())
        })
    }

    fn item_counts(&self, project_id: ProjectId) -> Result<Vec<(String, u64)>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT item_type, SUM(count)::bigint FROM item_counts WHERE project_id = $1 GROUP BY item_type ORDER BY item_type",
                    &[&project_id.0],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
        })
    }

    fn group_count_since(&self, group_id: GroupId, from_minute: i64) -> Result<u64> {
        self.with(async |c| {
            let n: i64 = c
                .query_one(
                    "SELECT COALESCE(SUM(count), 0)::bigint FROM group_buckets WHERE group_id = $1 AND minute >= $2",
                    &[&group_id.0, &from_minute],
                )
                .await?
                .get(0);
            Ok(n.max(0) as u64)
        })
    }

    fn stream(&self, q: &StreamQuery) -> Result<StreamPage> {
        self.with(async |c| {
            let (sql, args) = stream_sql(q);
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args.iter().map(|a| a.as_sql()).collect();
            let rows = c.query(&sql, &params).await?;
            let mut raws: Vec<(RawGroup, f64)> = rows.iter().map(|r| (group_from(r), r.get::<_, f64>(18))).collect();
            let next = if raws.len() > q.limit {
                raws.truncate(q.limit);
                raws.last().map(|(raw, sv)| Cursor { value: *sv, id: raw.0.id.0 })
            } else {
                None
            };
            let spark_since = q.since.unwrap_or(q.now - 30.0 * 86400.0);
            let mut out = Vec::with_capacity(raws.len());
            for (raw, sv) in raws {
                let group = with_durations(c, raw).await?;
                let interval_count = match (q.sort, q.since) {
                    (Sort::Frequency, _) => sv.max(0.0) as u64,
                    (_, None) if q.counts_by_environment() => environment_count_on(c, group.id.0, &q.environments).await?,
                    (_, None) => group.count,
                    (_, since) => interval_count_on(c, group.id.0, since, q.now).await?,
                };
                let (all, assignee) = assignee_on(c, group.id.0).await?;
                let users = match q.since {
                    None => all,
                    Some(since) => {
                        let n: i64 = c
                            .query_one(
                                "SELECT COUNT(*) FROM group_tags WHERE group_id = $1 AND key = 'user' AND last_seen >= $2",
                                &[&group.id.0, &since],
                            )
                            .await?
                            .get(0);
                        n.max(0) as u64
                    }
                };
                let sparkline = if q.sparkline_points > 0 {
                    group_series_on(c, group.id.0, spark_since, q.now, q.sparkline_points).await?
                } else {
                    Vec::new()
                };
                out.push(StreamRow { group, interval_count, users, assignee, sparkline });
            }
            Ok(StreamPage { rows: out, next })
        })
    }

    fn group_interval_count(&self, group_id: GroupId, since: Option<f64>, now: f64) -> Result<u64> {
        self.with(async |c| interval_count_on(c, group_id.0, since, now).await)
    }

    fn group_series(&self, group_id: GroupId, since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
        self.with(async |c| group_series_on(c, group_id.0, since, now, points).await)
    }

    fn project_series(&self, project_ids: &[ProjectId], since: f64, now: f64, points: usize) -> Result<Vec<u64>> {
        self.with(async |c| {
            let res = if now - since <= 3.0 * 3600.0 { Resolution::Minute } else { Resolution::Hour };
            let (table, col) = match res {
                Resolution::Minute => ("project_minutes", "minute"),
                _ => ("project_hours", "hour"),
            };
            let ids: Vec<i64> = project_ids.iter().map(|p| p.0).collect();
            let rows = c
                .query(
                    &format!("SELECT {col}, count FROM {table} WHERE project_id = ANY($1) AND {col} >= $2 AND {col} <= $3"),
                    &[&ids, &res.slot(since), &res.slot(now)],
                )
                .await?;
            let rows = rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1).max(0) as u64));
            Ok(crate::query::spread(rows, res, since, now, points))
        })
    }

    fn project_tag_values(&self, project_id: ProjectId, key: &str, limit: usize) -> Result<Vec<TagCount>> {
        self.with(async |c| {
            let rows = c
                .query(
                    "SELECT value, count FROM project_tags WHERE project_id = $1 AND key = $2 ORDER BY count DESC, value LIMIT $3",
                    &[&project_id.0, &key, &(limit as i64)],
                )
                .await?;
            Ok(rows.iter().map(|r| TagCount { value: r.get(0), count: r.get::<_, i64>(1).max(0) as u64 }).collect())
        })
    }

    fn duration_histogram(&self, group_id: GroupId) -> Result<Vec<HistogramBar>> {
        self.with(async |c| {
            let rows = c.query("SELECT bucket, count FROM group_durations WHERE group_id = $1 ORDER BY bucket", &[&group_id.0]).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let (lower, upper) = histogram::bounds(r.get(0));
                    HistogramBar { lower_ms: lower, upper_ms: upper, count: r.get::<_, i64>(1).max(0) as u64 }
                })
                .collect())
        })
    }

    fn new_groups(&self, project_ids: &[ProjectId], since: f64, environments: &[String], limit: usize) -> Result<Vec<GroupRow>> {
        self.with(async |c| {
            let ids: Vec<i64> = project_ids.iter().map(|p| p.0).collect();
            let limit = limit as i64;
            let envs = environments.to_vec();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ids, &since, &limit];
            let env = seen_in_environments(&mut params, &envs, "$2");
            let rows = c
                .query(
                    &format!(
                        "SELECT {GROUP_COLUMNS} FROM groups g WHERE g.project_id = ANY($1) AND g.status = 0 AND g.first_seen >= $2{env}
                         ORDER BY g.first_seen DESC LIMIT $3"
                    ),
                    &params,
                )
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(with_durations(c, group_from(r)).await?);
            }
            Ok(out)
        })
    }

    fn trending(&self, project_ids: &[ProjectId], now: f64, environments: &[String], limit: usize) -> Result<Vec<Trending>> {
        self.with(async |c| {
            let recent_since = now - 900.0;
            let (minute, hour) = (Resolution::Minute.slot(recent_since), Resolution::Hour.slot(now - 86400.0));
            let envs = environments.to_vec();
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&0i64, &recent_since, &minute, &hour];
            let env = seen_in_environments(&mut params, &envs, "$2");
            let st = c
                .prepare_cached(&format!(
                    "SELECT {GROUP_COLUMNS},
                        (SELECT COALESCE(SUM(b.count), 0)::bigint FROM group_buckets b WHERE b.group_id = g.id AND b.minute >= $3),
                        (SELECT COALESCE(SUM(h.count), 0)::bigint FROM group_hours h WHERE h.group_id = g.id AND h.hour >= $4)
                     FROM groups g WHERE g.project_id = $1 AND g.status = 0 AND g.last_seen >= $2{env}
                     ORDER BY g.last_seen DESC LIMIT 500"
                ))
                .await?;
            let mut out = Vec::new();
            for p in project_ids {
                params[0] = &p.0;
                let rows = c.query(&st, &params).await?;
                for r in &rows {
                    let (recent, day) = (r.get::<_, i64>(18).max(0) as u64, r.get::<_, i64>(19).max(0) as u64);
                    if recent == 0 {
                        continue;
                    }
                    let (last_24h, ratio) = crate::query::trending_ratio(recent, day);
                    out.push(Trending { group: with_durations(c, group_from(r)).await?, last_15m: recent, last_24h, ratio });
                }
            }
            out.sort_by(|a, b| b.ratio.total_cmp(&a.ratio).then(b.last_15m.cmp(&a.last_15m)));
            out.truncate(limit);
            Ok(out)
        })
    }
}

/// ` AND` the group had events in one of `environments` (bound as the next parameter, a text
/// array) since the time bound as `since`; nothing when none are chosen.
fn seen_in_environments<'a>(params: &mut Vec<&'a (dyn tokio_postgres::types::ToSql + Sync)>, environments: &'a Vec<String>, since: &str) -> String {
    if environments.is_empty() {
        return String::new();
    }
    params.push(environments);
    format!(
        " AND g.id IN (SELECT t.group_id FROM group_tags t WHERE t.key = 'environment' AND t.value = ANY(${}) AND t.last_seen >= {since})",
        params.len()
    )
}
