//! The sqlx calls of a SQL store, written once for every database.
//!
//! The bodies are the same for MySQL and SQLite and differ only in types;
//! sqlx's executor bounds cannot be named generically inside `async_trait`
//! methods without higher-ranked lifetime errors, so the one body is stamped
//! out per database by [`sqlx_backend!`]. Each dialect module passes only
//! what really differs: its constants and its error classification.

/// Implements [`Backend`](super::Backend) for a struct with a
/// `conns: Conns<Database, Connection>` field.
macro_rules! sqlx_backend {
    (
        backend: $backend:ty,
        database: $db:ty,
        connection: $conn:ty,
        arguments: $args:ty,
        name: $name:expr,
        upsert: $upsert:expr,
        greatest: $greatest:expr,
        least: $least:expr,
        name_bytes: $name_bytes:expr,
        columns: $columns:expr,
        max_packet: $max_packet:expr,
        pack_fields: $pack_fields:expr,
        last_insert_id: $last_insert_id:expr,
        insert_returning: $insert_returning:expr,
        dialect_sql: $dialect_sql:path,
        version_type: $version_type:expr,
        writers_type: $writers_type:expr,
        push_writer: $push_writer:expr,
        has_writer: $has_writer:expr,
        schema: $schema:expr,
        json: $json:expr,
        data_type: $data_type:expr,
        classify: $classify:path $(,)?
    ) => {
        type Query<'q> = sqlx::query::Query<'q, $db, $args>;

        /// A connection from the store's own pool or from a shared sqlx pool.
        enum Lease<'a> {
            Own($crate::store::sql::pool::Lease<'a, $conn>),
            Shared(sqlx::pool::PoolConnection<$db>),
        }

        impl std::ops::Deref for Lease<'_> {
            type Target = $conn;

            fn deref(&self) -> &$conn {
                match self {
                    Lease::Own(conn) => conn,
                    Lease::Shared(conn) => conn,
                }
            }
        }

        impl std::ops::DerefMut for Lease<'_> {
            fn deref_mut(&mut self) -> &mut $conn {
                match self {
                    Lease::Own(conn) => conn,
                    Lease::Shared(conn) => conn,
                }
            }
        }

        impl $backend {
            async fn lease(&self) -> Result<Lease<'_>, sqlx::Error> {
                match &self.conns {
                    $crate::store::sql::Conns::Own(pool) => pool.acquire().await.map(Lease::Own),
                    $crate::store::sql::Conns::Shared(pool) => {
                        pool.acquire().await.map(Lease::Shared)
                    }
                }
            }

            /// Ends a lease's work: a connection that failed for want of
            /// the server is dropped, any other goes back to the pool.
            fn check<T>(lease: &mut Lease<'_>, result: &Result<T, sqlx::Error>) {
                if let Lease::Own(own) = lease {
                    match result {
                        Err(error)
                            if matches!(
                                classify(error),
                                $crate::store::sql::ErrorClass::Unavailable
                                    | $crate::store::sql::ErrorClass::Lost
                            ) =>
                        {
                            own.discard()
                        }
                        _ => own.finish(),
                    }
                }
            }
        }

        /// `work` within `limit`; past it, [`timed_out`](crate::store::sql::timed_out)
        /// (dropping `work` closes nothing: the caller discards the
        /// connection it was using).
        async fn limited<T>(
            limit: Option<std::time::Duration>,
            work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
        ) -> Result<T, sqlx::Error> {
            match limit {
                None => work.await,
                Some(limit) => tokio::time::timeout(limit, work)
                    .await
                    .unwrap_or_else(|_| Err($crate::store::sql::timed_out(limit))),
            }
        }

        /// The statement's arguments bound to `sql`, its text in the
        /// dialect (see `dialect_sql`).
        fn bind<'q>(sql: &'q str, stmt: &'q $crate::store::sql::Stmt<'q>) -> Query<'q> {
            use $crate::store::sql::Arg;
            stmt.args
                .iter()
                .fold(sqlx::query(sql), |q, arg| match *arg {
                    Arg::Int(v) => q.bind(v),
                    Arg::Text(v) => q.bind(v),
                    Arg::Bytes(v) => q.bind(v),
                    Arg::Flag(v) => q.bind(v),
                })
        }

        async fn run_all(
            conn: &mut $conn,
            stmts: &[$crate::store::sql::Stmt<'_>],
            must_match: usize,
        ) -> Result<$crate::store::sql::Affected, sqlx::Error> {
            let mut affected = Vec::with_capacity(stmts.len());
            for (i, stmt) in stmts.iter().enumerate() {
                let sql = $dialect_sql(&stmt.sql);
                let n = bind(&sql, stmt).execute(&mut *conn).await?.rows_affected();
                if i < must_match && n == 0 {
                    return Ok(None);
                }
                affected.push(n);
            }
            Ok(Some(affected))
        }

        /// Several statements in one short transaction.
        async fn transaction(
            conn: &mut $conn,
            stmts: &[$crate::store::sql::Stmt<'_>],
            must_match: usize,
        ) -> Result<$crate::store::sql::Affected, sqlx::Error> {
            use sqlx::Connection as _;
            // Every transaction here starts with a write, so it takes its
            // write locks at its first statement.
            let mut tx = conn.begin().await?;
            let affected = match run_all(&mut tx, stmts, must_match).await {
                Ok(affected) => affected,
                Err(error) => {
                    // Roll back now rather than when the connection is next
                    // used: its row locks go at once. If even that fails,
                    // the original error is the one to report.
                    let _ = tx.rollback().await;
                    return Err(error);
                }
            };
            match affected {
                Some(_) => tx.commit().await?,
                None => tx.rollback().await?,
            }
            Ok(affected)
        }

        #[async_trait::async_trait]
        impl $crate::store::sql::Backend for $backend {
            const NAME: &'static str = $name;
            const UPSERT: &'static str = $upsert;
            const GREATEST: &'static str = $greatest;
            const LEAST: &'static str = $least;
            const NAME_BYTES: &'static str = $name_bytes;
            const COLUMNS: &'static str = $columns;
            const MAX_PACKET: Option<&'static str> = $max_packet;
            const PACK_FIELDS: Option<&'static str> = $pack_fields;
            const VERSION_TYPE: &'static str = $version_type;
            const WRITERS_TYPE: &'static str = $writers_type;
            const PUSH_WRITER: &'static str = $push_writer;
            const HAS_WRITER: &'static str = $has_writer;
            const SCHEMA: &'static str = $schema;
            const INSERT_RETURNING: &'static str = $insert_returning;
            const JSON: $crate::store::sql::JsonDialect = $json;
            const DATA_TYPE: &'static str = $data_type;

            async fn execute(
                &self,
                stmts: &[$crate::store::sql::Stmt<'_>],
                must_match: usize,
                limit: Option<std::time::Duration>,
            ) -> Result<$crate::store::sql::Affected, sqlx::Error> {
                let mut lease = self.lease().await?;
                let work = async {
                    if stmts.len() == 1 {
                        run_all(&mut lease, stmts, must_match).await
                    } else {
                        transaction(&mut lease, stmts, must_match).await
                    }
                };
                let result = limited(limit, work).await;
                Self::check(&mut lease, &result);
                result
            }

            async fn insert(
                &self,
                stmt: &$crate::store::sql::Stmt<'_>,
                limit: Option<std::time::Duration>,
            ) -> Result<i64, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&stmt.sql);
                let mut lease = self.lease().await?;
                let work = async {
                    if $insert_returning.is_empty() {
                        let done = bind(&sql, stmt).execute(&mut *lease).await?;
                        return Ok(($last_insert_id)(&done));
                    }
                    bind(&sql, stmt)
                        .fetch_one(&mut *lease)
                        .await?
                        .try_get::<i64, _>(0)
                };
                let result = limited(limit, work).await;
                Self::check(&mut lease, &result);
                result
            }

            async fn take(
                &self,
                claim: &$crate::store::sql::Stmt<'_>,
                delete: &(dyn for<'p> Fn(&'p [i64]) -> $crate::store::sql::Stmt<'static> + Send + Sync),
                limit: Option<std::time::Duration>,
            ) -> Result<Vec<$crate::store::sql::Taken>, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&claim.sql);
                let mut lease = self.lease().await?;
                let work = async {
                    let taken = |r: &<$db as sqlx::Database>::Row| -> Result<$crate::store::sql::Taken, sqlx::Error> {
                        Ok((r.try_get(0)?, r.try_get(1)?))
                    };
                    if Self::DELETE_RETURNING {
                        let rows = bind(&sql, claim).fetch_all(&mut *lease).await?;
                        return rows.iter().map(taken).collect();
                    }
                    use sqlx::Connection as _;
                    let mut tx = (*lease).begin().await?;
                    let rows = bind(&sql, claim).fetch_all(&mut *tx).await?;
                    if !rows.is_empty() {
                        let pks = rows
                            .iter()
                            .map(|r| r.try_get::<i64, _>(2))
                            .collect::<Result<Vec<_>, _>>()?;
                        let delete = delete(&pks);
                        let delete_sql = $dialect_sql(&delete.sql);
                        bind(&delete_sql, &delete).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    rows.iter().map(taken).collect()
                };
                let result = limited(limit, work).await;
                Self::check(&mut lease, &result);
                result
            }

            async fn fetch_session(
                &self,
                stmt: &$crate::store::sql::Stmt<'_>,
            ) -> Result<Vec<$crate::store::sql::SessionRow>, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&stmt.sql);
                let mut lease = self.lease().await?;
                let result = bind(&sql, stmt).fetch_all(&mut *lease).await;
                Self::check(&mut lease, &result);
                let rows = result?;
                // The session row's columns, then (when the load asked
                // for field rows) one field per row, or all of them packed.
                let head =
                    |r: &<$db as sqlx::Database>::Row, field, version| -> Result<_, sqlx::Error> {
                        Ok($crate::store::sql::SessionRow {
                            created_at: r.try_get(0)?,
                            expires_at: r.try_get(1)?,
                            idle_timeout: r.try_get(2)?,
                            persistent: r.try_get(3)?,
                            data: r.try_get(4)?,
                            field,
                            version,
                        })
                    };
                if Self::PACK_FIELDS.is_some() {
                    let Some(r) = rows.first() else {
                        return Ok(Vec::new());
                    };
                    let packed: Option<Vec<u8>> = if r.len() > 5 { r.try_get(5)? } else { None };
                    let fields = $crate::store::sql::unpack(packed.as_deref())
                        .map_err(|e| sqlx::Error::Decode(e.into()))?;
                    if fields.is_empty() {
                        return Ok(vec![head(r, None, None)?]);
                    }
                    return fields
                        .into_iter()
                        .map(|(name, value, version)| head(r, Some((name, value)), version))
                        .collect();
                }
                rows.iter()
                    .map(|r| {
                        if r.len() <= 5 {
                            return head(r, None, None);
                        }
                        // Names are read as bytes (see `NAME_BYTES`).
                        let name: Option<Vec<u8>> = r.try_get(5)?;
                        let name = name
                            .map(String::from_utf8)
                            .transpose()
                            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                        let value: Option<Vec<u8>> = r.try_get(6)?;
                        head(r, name.zip(value), r.try_get(7)?)
                    })
                    .collect()
            }

            async fn fetch_bytes(
                &self,
                stmt: &$crate::store::sql::Stmt<'_>,
            ) -> Result<Vec<Vec<u8>>, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&stmt.sql);
                let mut lease = self.lease().await?;
                let result = bind(&sql, stmt).fetch_all(&mut *lease).await;
                Self::check(&mut lease, &result);
                result?.iter().map(|r| r.try_get(0)).collect()
            }

            async fn fetch_ints(
                &self,
                stmt: &$crate::store::sql::Stmt<'_>,
            ) -> Result<Vec<i64>, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&stmt.sql);
                let mut lease = self.lease().await?;
                let result = bind(&sql, stmt).fetch_all(&mut *lease).await;
                Self::check(&mut lease, &result);
                result?.iter().map(|r| r.try_get::<i64, _>(0)).collect()
            }

            async fn fetch_replaced(
                &self,
                stmt: &$crate::store::sql::Stmt<'_>,
            ) -> Result<Vec<(Vec<u8>, i64, Option<i64>)>, sqlx::Error> {
                use sqlx::Row as _;
                let sql = $dialect_sql(&stmt.sql);
                let mut lease = self.lease().await?;
                let result = bind(&sql, stmt).fetch_all(&mut *lease).await;
                Self::check(&mut lease, &result);
                result?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect()
            }

            async fn run_ddl(&self, statements: &[String]) -> Result<(), sqlx::Error> {
                let mut lease = self.lease().await?;
                for sql in statements {
                    let sql = $dialect_sql(sql);
                    let result = sqlx::query(&sql).execute(&mut *lease).await;
                    Self::check(&mut lease, &result);
                    result?;
                }
                Ok(())
            }

            fn idle_connections(&self) -> Option<usize> {
                match &self.conns {
                    $crate::store::sql::Conns::Own(pool) => Some(pool.idle_count()),
                    $crate::store::sql::Conns::Shared(_) => None,
                }
            }

            fn purge_idle(&self) {
                if let $crate::store::sql::Conns::Own(pool) = &self.conns {
                    pool.purge_idle();
                }
            }

            async fn close(&self) {
                match &self.conns {
                    $crate::store::sql::Conns::Own(pool) => pool.close().await,
                    // A pool the app shared is the app's to close.
                    $crate::store::sql::Conns::Shared(_) => {}
                }
            }

            fn classify(error: &sqlx::Error) -> $crate::store::sql::ErrorClass {
                $classify(error)
            }
        }
    };
}

pub(crate) use sqlx_backend;

/// The statement text of a dialect that takes the shared SQL as it is
/// (`?` placeholders, backquoted names).
pub(crate) fn shared_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(sql)
}
