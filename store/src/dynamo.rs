//! The DynamoDB backend: one table, string keys `pk` and `sk`, conditional writes for everything that
//! must not race, transactions where two items change together, and a TTL attribute (`expires_at`, epoch
//! seconds) so DynamoDB deletes expired records itself. Reads filter on the exact millisecond expiry,
//! since TTL deletion lags. The key patterns are documented in `docs/store.md`:
//!
//! | Item | `pk` | `sk` |
//! |---|---|---|
//! | record | `R#FAMILY` | key |
//! | lease | `L#NAME` | `-` |
//! | audit entry / chain head | `AUDIT` / `AUDIT#HEAD` | seq (20 digits) / `-` |
//! | execution (all / per flow) | `X` / `X#FLOW` | id |
//! | flow state | `S` | flow |
//! | activity | `A` | flow |

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TransactWriteItem,
};

use crate::sql::condition_failed;
use crate::{
    AuditEntry, AuditQuery, AuditRecord, ExecutionRecord, Expect, Family, FlowStateRecord, Item, Lease, LeaseRequest, Listing, Outcome,
    Page, Put, Result, Store, StoreError, now_ms, ttl_ms,
};

/// Static AWS credentials (for [`DynamoStore::open_with`]).
pub use aws_sdk_dynamodb::config::Credentials as AwsCredentials;

/// Where a DynamoDB store lives, parsed from `dynamodb://TABLE?region=REGION&endpoint=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTarget {
    /// Table name.
    pub table: String,
    /// Region (`None`: the AWS default chain, e.g. `AWS_REGION`).
    pub region: Option<String>,
    /// Endpoint URL (`None`: AWS's own), e.g. a local DynamoDB-protocol server.
    pub endpoint: Option<String>,
}

impl DynamoTarget {
    /// Parses a store URL. Credentials come from the AWS default chain (environment, profile, web
    /// identity, instance metadata), never from the URL.
    pub fn parse(url: &str) -> Result<DynamoTarget> {
        let invalid = |reason: String| StoreError::InvalidUrl { url: url.to_string(), reason };
        let rest = url.strip_prefix("dynamodb://").ok_or_else(|| invalid("it must start with dynamodb://".into()))?;
        let (table, query) = rest.split_once('?').unwrap_or((rest, ""));
        let valid_name =
            (3..=255).contains(&table.len()) && table.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(invalid(format!(
                "`{table}` is not a DynamoDB table name (3 to 255 letters, digits, `_`, `-` or `.`); write dynamodb://TABLE?region=REGION"
            )));
        }
        let mut target = DynamoTarget { table: table.to_string(), region: None, endpoint: None };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if value.is_empty() {
                return Err(invalid(format!("`{key}` has no value; write {key}=VALUE")));
            }
            match key {
                "region" => target.region = Some(value.to_string()),
                "endpoint" if value.starts_with("http://") || value.starts_with("https://") => target.endpoint = Some(value.to_string()),
                "endpoint" => return Err(invalid(format!("endpoint `{value}` must be an http:// or https:// URL"))),
                other => return Err(invalid(format!("unknown parameter `{other}`; the parameters are region and endpoint"))),
            }
        }
        Ok(target)
    }
}

/// A store in one DynamoDB table shared by every replica.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Attrs = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The error of a DynamoDB call, with the full chain of causes in its message.
fn sdk_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    move |e| StoreError::DynamoDb { operation, message: DisplayErrorContext(&e).to_string(), source: Box::new(e) }
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { what, value: detail.into() }
}

fn get_s(item: &Attrs, name: &'static str) -> Result<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        other => Err(corrupt(name, format!("{other:?}"))),
    }
}

fn get_opt_s(item: &Attrs, name: &'static str) -> Result<Option<String>> {
    item.get(name).map(|_| get_s(item, name)).transpose()
}

fn get_n(item: &Attrs, name: &'static str) -> Result<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(name, v.clone())),
        other => Err(corrupt(name, format!("{other:?}"))),
    }
}

fn get_opt_n(item: &Attrs, name: &'static str) -> Result<Option<i64>> {
    item.get(name).map(|_| get_n(item, name)).transpose()
}

fn get_u64(item: &Attrs, name: &'static str) -> Result<u64> {
    crate::sql::to_u64(name, get_n(item, name)?)
}

fn get_opt_bool(item: &Attrs, name: &'static str) -> Result<Option<bool>> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::Bool(b)) => Ok(Some(*b)),
        other => Err(corrupt(name, format!("{other:?}"))),
    }
}

fn record_pk(family: Family) -> String {
    format!("R#{}", family.as_str())
}

fn lease_pk(name: &str) -> String {
    format!("L#{name}")
}

/// The audit sort key: zero-padded so that string order is numeric order.
fn audit_sk(seq: u64) -> String {
    format!("{seq:020}")
}

/// Epoch seconds for DynamoDB's TTL, rounded up so an item is never deleted before it expires.
fn ttl_seconds(expires_ms: i64) -> i64 {
    expires_ms.div_euclid(1000) + i64::from(expires_ms.rem_euclid(1000) != 0)
}

impl DynamoStore {
    /// Connects to the table `target` names, creating it (on-demand capacity, TTL on `expires_at`) when
    /// it does not exist. Fails within seconds when the endpoint cannot be reached.
    pub async fn open(target: &DynamoTarget) -> Result<DynamoStore> {
        Self::open_with(target, None).await
    }

    /// Like [`DynamoStore::open`] with these credentials instead of the AWS default chain's.
    pub async fn open_with(target: &DynamoTarget, credentials: Option<AwsCredentials>) -> Result<DynamoStore> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(15))
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).timeout_config(timeouts);
        if let Some(credentials) = credentials {
            loader = loader.credentials_provider(credentials);
        }
        if let Some(region) = &target.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &target.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(StoreError::InvalidUrl {
                url: format!("dynamodb://{}", target.table),
                reason: "no AWS region: add ?region=REGION to the URL or set AWS_REGION".into(),
            });
        }
        let store = DynamoStore { client: Client::new(&config), table: target.table.clone() };
        store.ensure_table().await?;
        Ok(store)
    }

    /// Creates the table when missing and waits until it is active.
    async fn ensure_table(&self) -> Result<()> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return self.wait_active().await,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(sdk_error("DescribeTable")(e)),
        }
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let attr = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash).map_err(|e| corrupt("key schema", e.to_string()))?)
            .key_schema(key("sk", KeyType::Range).map_err(|e| corrupt("key schema", e.to_string()))?)
            .attribute_definitions(attr("pk").map_err(|e| corrupt("attribute", e.to_string()))?)
            .attribute_definitions(attr("sk").map_err(|e| corrupt("attribute", e.to_string()))?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another replica created it at the same moment.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk_error("CreateTable")(e)),
        }
        self.wait_active().await?;
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("expires_at")
            .build()
            .map_err(|e| corrupt("ttl", e.to_string()))?;
        match self.client.update_time_to_live().table_name(&self.table).time_to_live_specification(ttl).send().await {
            Ok(_) => Ok(()),
            // Already enabled (by a concurrent start).
            Err(e) if DisplayErrorContext(&e).to_string().contains("already enabled") => Ok(()),
            Err(e) => Err(sdk_error("UpdateTimeToLive")(e)),
        }
    }

    async fn wait_active(&self) -> Result<()> {
        for _ in 0..120 {
            let described = self.client.describe_table().table_name(&self.table).send().await.map_err(sdk_error("DescribeTable"))?;
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(StoreError::Invalid(format!("DynamoDB table `{}` did not become active within a minute", self.table)))
    }

    async fn get_item(&self, pk: String, sk: String, operation: &'static str) -> Result<Option<Attrs>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error(operation))?;
        Ok(out.item)
    }

    /// Every item of one partition, in sort key order (`forward`) or reverse, after `after`, until
    /// `wanted` items passed `keep`.
    async fn query(
        &self,
        pk: String,
        prefix: &str,
        after: Option<&str>,
        forward: bool,
        wanted: usize,
        keep: impl Fn(&Attrs) -> bool,
    ) -> Result<Vec<Attrs>> {
        let mut out = Vec::new();
        let mut start: Option<Attrs> = after.map(|a| HashMap::from([("pk".to_string(), s(pk.clone())), ("sk".to_string(), s(a))]));
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .scan_index_forward(forward)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk.clone()))
                .limit(i32::try_from(wanted.saturating_sub(out.len()).max(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            q = if prefix.is_empty() {
                q.key_condition_expression("#pk = :pk")
            } else {
                q.key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = q.send().await.map_err(sdk_error("Query"))?;
            out.extend(page.items.unwrap_or_default().into_iter().filter(|i| keep(i)));
            match page.last_evaluated_key {
                Some(key) if out.len() < wanted => start = Some(key),
                _ => break,
            }
        }
        out.truncate(wanted);
        Ok(out)
    }

    fn item_from(attrs: &Attrs) -> Result<Item> {
        let key = get_s(attrs, "sk")?;
        let value = serde_json::from_str(&get_s(attrs, "v")?).map_err(|e| corrupt("record", format!("{key}: {e}")))?;
        Ok(Item { value, version: get_u64(attrs, "ver")?, updated_ms: get_n(attrs, "upd")?, expires_ms: get_opt_n(attrs, "exp")?, key })
    }

    fn live(attrs: &Attrs, now: i64) -> bool {
        get_opt_n(attrs, "exp").ok().flatten().is_none_or(|exp| exp > now)
    }

    fn lease_from(attrs: &Attrs) -> Result<Lease> {
        Ok(Lease {
            name: get_s(attrs, "pk")?.trim_start_matches("L#").to_string(),
            holder: get_s(attrs, "holder")?,
            token: get_u64(attrs, "token")?,
            data: get_s(attrs, "data")?,
            acquired_ms: get_n(attrs, "acq")?,
            expires_ms: get_n(attrs, "exp")?,
        })
    }

    fn audit_from(attrs: &Attrs) -> Result<AuditRecord> {
        Ok(AuditRecord {
            seq: get_s(attrs, "sk")?.parse().map_err(|_| corrupt("audit sequence", format!("{:?}", attrs.get("sk"))))?,
            at_ms: get_n(attrs, "at")?,
            entry: AuditEntry {
                actor: get_s(attrs, "actor")?,
                source: attrs.get("source").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
                action: get_s(attrs, "action")?,
                target: get_s(attrs, "target")?,
                detail: get_s(attrs, "detail")?,
            },
            prev_hash: get_s(attrs, "prev")?,
            hash: get_s(attrs, "hash")?,
        })
    }

    fn execution_from(attrs: &Attrs) -> Result<ExecutionRecord> {
        let outcome = get_s(attrs, "outcome")?;
        Ok(ExecutionRecord {
            id: get_s(attrs, "sk")?,
            flow: get_s(attrs, "flow")?,
            trigger: get_s(attrs, "trigger")?,
            outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("execution outcome", outcome))?,
            error: get_opt_s(attrs, "error")?,
            started_ms: get_n(attrs, "started")?,
            finished_ms: get_opt_n(attrs, "finished")?,
            steps: serde_json::from_str(&get_s(attrs, "steps")?).map_err(|e| corrupt("execution steps", e.to_string()))?,
        })
    }

    fn execution_item(pk: String, record: &ExecutionRecord, steps: &str) -> Attrs {
        let mut item = HashMap::from([
            ("pk".to_string(), s(pk)),
            ("sk".to_string(), s(&record.id)),
            ("flow".to_string(), s(&record.flow)),
            ("trigger".to_string(), s(&record.trigger)),
            ("outcome".to_string(), s(record.outcome.as_str())),
            ("started".to_string(), n(record.started_ms)),
            ("steps".to_string(), s(steps)),
        ]);
        if let Some(error) = &record.error {
            item.insert("error".into(), s(error));
        }
        if let Some(finished) = record.finished_ms {
            item.insert("finished".into(), n(finished));
        }
        item
    }

    /// Updates the lease item under `condition`; `None` when the condition failed.
    async fn update_lease(&self, name: &str, update: &str, condition: &str, values: Attrs) -> Result<Option<Lease>> {
        let names = HashMap::from([
            ("#holder".to_string(), "holder".to_string()),
            ("#token".to_string(), "token".to_string()),
            ("#data".to_string(), "data".to_string()),
            ("#acq".to_string(), "acq".to_string()),
            ("#exp".to_string(), "exp".to_string()),
        ]);
        // Only the names an expression uses may be sent.
        let used: HashMap<String, String> =
            names.into_iter().filter(|(k, _)| update.contains(k.as_str()) || condition.contains(k.as_str())).collect();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(lease_pk(name)))
            .key("sk", s("-"))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(used))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => out.attributes.as_ref().map(Self::lease_from).transpose(),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(sdk_error("UpdateItem (lease)")(e)),
        }
    }
}

#[async_trait::async_trait]
impl Store for DynamoStore {
    fn backend(&self) -> &'static str {
        "dynamodb"
    }

    async fn get(&self, family: Family, key: &str) -> Result<Option<Item>> {
        let now = now_ms();
        match self.get_item(record_pk(family), key.to_string(), "GetItem (record)").await? {
            Some(attrs) if Self::live(&attrs, now) => Self::item_from(&attrs).map(Some),
            _ => Ok(None),
        }
    }

    async fn put(&self, put: Put<'_>) -> Result<Item> {
        let now = now_ms();
        let mut values = HashMap::from([
            (":v".to_string(), s(put.value.to_string())),
            (":upd".to_string(), n(now)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        let mut update = "SET #v = :v, #upd = :upd, #ver = if_not_exists(#ver, :zero) + :one".to_string();
        match put.expires_ms {
            Some(exp) => {
                update.push_str(", #exp = :exp, #ttl = :ttl");
                values.insert(":exp".into(), n(exp));
                values.insert(":ttl".into(), n(ttl_seconds(exp)));
            }
            None => update.push_str(" REMOVE #exp, #ttl"),
        }
        let condition = match put.expect {
            Expect::Any => None,
            Expect::Absent => Some("attribute_not_exists(#pk) OR (attribute_exists(#exp) AND #exp <= :now)"),
            Expect::Version(v) => {
                values.insert(":expected".into(), n(v));
                Some("#ver = :expected AND (attribute_not_exists(#exp) OR #exp > :now)")
            }
        };
        if condition.is_some() {
            values.insert(":now".into(), n(now));
        }
        let mut names = HashMap::from([
            ("#v".to_string(), "v".to_string()),
            ("#upd".to_string(), "upd".to_string()),
            ("#ver".to_string(), "ver".to_string()),
            ("#exp".to_string(), "exp".to_string()),
            ("#ttl".to_string(), "expires_at".to_string()),
        ]);
        if put.expect == Expect::Absent {
            names.insert("#pk".into(), "pk".into());
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(record_pk(put.family)))
            .key("sk", s(put.key))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match out {
            Ok(out) => Ok(Item {
                key: put.key.to_string(),
                value: put.value.clone(),
                version: get_u64(out.attributes.as_ref().unwrap_or(&HashMap::new()), "ver")?,
                updated_ms: now,
                expires_ms: put.expires_ms,
            }),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(condition_failed(put.family, put.key, put.expect, self.get(put.family, put.key).await?))
            }
            Err(e) => Err(sdk_error("UpdateItem (record)")(e)),
        }
    }

    async fn delete(&self, family: Family, key: &str, expect: Expect) -> Result<()> {
        let now = now_ms();
        let mut values = HashMap::from([(":now".to_string(), n(now))]);
        let mut names = HashMap::from([("#pk".to_string(), "pk".to_string()), ("#exp".to_string(), "exp".to_string())]);
        let mut condition = "attribute_exists(#pk) AND (attribute_not_exists(#exp) OR #exp > :now)".to_string();
        match expect {
            Expect::Absent => return Err(StoreError::Invalid("a delete cannot expect the item to be absent".into())),
            Expect::Any => {}
            Expect::Version(v) => {
                condition.push_str(" AND #ver = :expected");
                values.insert(":expected".into(), n(v));
                names.insert("#ver".into(), "ver".into());
            }
        }
        // A delete expires the item now (DynamoDB's TTL removes it later): a create in between continues
        // its version, so a reader holding an old version never matches the new record. It takes a
        // version itself, so a conditional update whose clock reads earlier than the delete's cannot
        // still see the item as live and bring it back.
        values.insert(":exp".into(), n(now));
        values.insert(":ttl".into(), n(ttl_seconds(now)));
        values.insert(":one".into(), n(1));
        names.insert("#ttl".into(), "expires_at".into());
        names.insert("#ver".into(), "ver".into());
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(record_pk(family)))
            .key("sk", s(key))
            .update_expression("SET #exp = :exp, #ttl = :ttl, #ver = #ver + :one")
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(condition_failed(family, key, expect, self.get(family, key).await?))
            }
            Err(e) => Err(sdk_error("UpdateItem (record delete)")(e)),
        }
    }

    async fn list(&self, family: Family, prefix: &str, page: &Page) -> Result<Listing<Item>> {
        let now = now_ms();
        let wanted = usize::try_from(page.rows()).unwrap_or(usize::MAX).saturating_add(1);
        let items = self.query(record_pk(family), prefix, page.after.as_deref(), true, wanted, |a| Self::live(a, now)).await?;
        let items = items.iter().map(Self::item_from).collect::<Result<Vec<_>>>()?;
        Ok(Listing::from_overfetch(items, page, |i| i.key.clone()))
    }

    async fn purge_expired(&self, _before_ms: i64) -> Result<u64> {
        // DynamoDB's TTL on `expires_at` deletes expired items.
        Ok(0)
    }

    async fn acquire_lease(&self, request: LeaseRequest<'_>) -> Result<Option<Lease>> {
        let now = now_ms();
        let values = HashMap::from([
            (":holder".to_string(), s(request.holder)),
            (":data".to_string(), s(request.data)),
            (":now".to_string(), n(now)),
            (":exp".to_string(), n(now.saturating_add(ttl_ms(request.ttl)))),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
        ]);
        self.update_lease(
            request.name,
            "SET #holder = :holder, #data = :data, #acq = :now, #exp = :exp, #token = if_not_exists(#token, :zero) + :one",
            "attribute_not_exists(#exp) OR #exp <= :now OR #holder = :holder",
            values,
        )
        .await
    }

    async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>> {
        let now = now_ms();
        let values = HashMap::from([
            (":holder".to_string(), s(&lease.holder)),
            (":token".to_string(), n(lease.token)),
            (":now".to_string(), n(now)),
            (":exp".to_string(), n(now.saturating_add(ttl_ms(ttl)))),
        ]);
        self.update_lease(&lease.name, "SET #exp = :exp", "#holder = :holder AND #token = :token AND #exp > :now", values).await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<bool> {
        let values = HashMap::from([
            (":holder".to_string(), s(&lease.holder)),
            (":token".to_string(), n(lease.token)),
            (":now".to_string(), n(now_ms())),
            (":zero".to_string(), n(0)),
        ]);
        // The item stays (expired) so that the next holder's token is still larger.
        Ok(self
            .update_lease(&lease.name, "SET #exp = :zero", "#holder = :holder AND #token = :token AND #exp > :now", values)
            .await?
            .is_some())
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>> {
        let now = now_ms();
        let item = self.get_item(lease_pk(name), "-".into(), "GetItem (lease)").await?;
        Ok(item.as_ref().map(Self::lease_from).transpose()?.filter(|l| l.expires_ms > now))
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord> {
        // Optimistic: the new entry and the chain head change in one transaction that only succeeds
        // if the head is still the one read; a loser re-reads and tries again.
        for attempt in 0u32.. {
            let head = self.get_item("AUDIT#HEAD".into(), "-".into(), "GetItem (audit head)").await?;
            let head = head.map(|h| Ok::<_, StoreError>((get_u64(&h, "seq")?, get_s(&h, "hash")?))).transpose()?;
            let record = AuditRecord::next(head.as_ref().map(|(seq, hash)| (*seq, hash.as_str())), now_ms(), entry);
            let put_entry = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(HashMap::from([
                    ("pk".to_string(), s("AUDIT")),
                    ("sk".to_string(), s(audit_sk(record.seq))),
                    ("at".to_string(), n(record.at_ms)),
                    ("actor".to_string(), s(&entry.actor)),
                    ("source".to_string(), s(&entry.source)),
                    ("action".to_string(), s(&entry.action)),
                    ("target".to_string(), s(&entry.target)),
                    ("detail".to_string(), s(&entry.detail)),
                    ("prev".to_string(), s(&record.prev_hash)),
                    ("hash".to_string(), s(&record.hash)),
                ])))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| corrupt("audit put", e.to_string()))?;
            let mut move_head = aws_sdk_dynamodb::types::Put::builder().table_name(&self.table).set_item(Some(HashMap::from([
                ("pk".to_string(), s("AUDIT#HEAD")),
                ("sk".to_string(), s("-")),
                ("seq".to_string(), n(record.seq)),
                ("hash".to_string(), s(&record.hash)),
            ])));
            move_head = match &head {
                None => move_head.condition_expression("attribute_not_exists(pk)"),
                Some((seq, _)) => move_head
                    .condition_expression("#seq = :seq")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_values(":seq", n(seq)),
            };
            let move_head = move_head.build().map_err(|e| corrupt("audit head", e.to_string()))?;
            let out = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put_entry).build())
                .transact_items(TransactWriteItem::builder().put(move_head).build())
                .send()
                .await;
            match out {
                Ok(_) => return Ok(record),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_transaction_canceled_exception() || e.is_transaction_in_progress_exception())
                        && attempt < 200 =>
                {
                    // Spread the retries of concurrent writers.
                    let jitter = u64::from(std::process::id().wrapping_add(attempt.wrapping_mul(7919))) % 20;
                    tokio::time::sleep(Duration::from_millis(2 + jitter)).await;
                }
                Err(e) => return Err(sdk_error("TransactWriteItems (audit)")(e)),
            }
        }
        unreachable!("the retry loop returns")
    }

    async fn audit(&self, query: &AuditQuery, page: &Page) -> Result<Listing<AuditRecord>> {
        let after = match page.after.as_deref() {
            None => None,
            Some(cursor) => Some(audit_sk(u64::try_from(crate::sql::numeric_cursor(Some(cursor))?).unwrap_or(0))),
        };
        let wanted = usize::try_from(page.rows()).unwrap_or(usize::MAX).saturating_add(1);
        let keep = |attrs: &Attrs| Self::audit_from(attrs).is_ok_and(|r| query.matches(&r));
        let items = self.query("AUDIT".into(), "", after.as_deref(), !query.newest_first, wanted, keep).await?;
        let records = items.iter().map(Self::audit_from).collect::<Result<Vec<_>>>()?;
        Ok(Listing::from_overfetch(records, page, |r| r.seq.to_string()))
    }

    async fn flow_states(&self) -> Result<Vec<FlowStateRecord>> {
        let items = self.query("S".into(), "", None, true, usize::MAX, |_| true).await?;
        items
            .iter()
            .map(|a| {
                Ok(FlowStateRecord {
                    flow: get_s(a, "sk")?,
                    state: get_s(a, "state")?,
                    pinned: get_opt_bool(a, "pinned")?,
                    disabled: get_opt_bool(a, "disabled")?,
                    updated_ms: get_n(a, "upd")?,
                })
            })
            .collect()
    }

    async fn put_flow_state(&self, record: &FlowStateRecord) -> Result<()> {
        let mut item = HashMap::from([
            ("pk".to_string(), s("S")),
            ("sk".to_string(), s(&record.flow)),
            ("state".to_string(), s(&record.state)),
            ("upd".to_string(), n(record.updated_ms)),
        ]);
        if let Some(p) = record.pinned {
            item.insert("pinned".into(), AttributeValue::Bool(p));
        }
        if let Some(d) = record.disabled {
            item.insert("disabled".into(), AttributeValue::Bool(d));
        }
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(sdk_error("PutItem (flow state)"))?;
        Ok(())
    }

    async fn put_execution(&self, record: &ExecutionRecord) -> Result<()> {
        let steps = serde_json::to_string(&record.steps).map_err(|e| corrupt("execution steps", e.to_string()))?;
        // Two copies, for the listing of all executions and the listing of one flow's, written together.
        let put = |pk: String| {
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(Self::execution_item(pk, record, &steps)))
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| corrupt("execution put", e.to_string()))
        };
        self.client
            .transact_write_items()
            .transact_items(put("X".into())?)
            .transact_items(put(format!("X#{}", record.flow))?)
            .send()
            .await
            .map_err(sdk_error("TransactWriteItems (execution)"))?;
        Ok(())
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        self.get_item("X".into(), id.to_string(), "GetItem (execution)").await?.as_ref().map(Self::execution_from).transpose()
    }

    async fn executions(&self, flow: Option<&str>, page: &Page) -> Result<Listing<ExecutionRecord>> {
        let pk = flow.map_or_else(|| "X".to_string(), |f| format!("X#{f}"));
        let wanted = usize::try_from(page.rows()).unwrap_or(usize::MAX).saturating_add(1);
        let items = self.query(pk, "", page.after.as_deref(), false, wanted, |_| true).await?;
        let records = items.iter().map(Self::execution_from).collect::<Result<Vec<_>>>()?;
        Ok(Listing::from_overfetch(records, page, |r| r.id.clone()))
    }

    async fn record_activity(&self, flow: &str, at_ms: i64) -> Result<()> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("A"))
            .key("sk", s(flow))
            .update_expression("SET #last = :at")
            .condition_expression("attribute_not_exists(#last) OR #last < :at")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":at", n(at_ms))
            .send()
            .await;
        match out {
            // Already later: max-merge keeps the larger value.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            other => other.map(|_| ()).map_err(sdk_error("UpdateItem (activity)")),
        }
    }

    async fn activity(&self) -> Result<Vec<(String, i64)>> {
        let items = self.query("A".into(), "", None, true, usize::MAX, |_| true).await?;
        items.iter().map(|a| Ok((get_s(a, "sk")?, get_n(a, "last")?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_region_and_endpoint() {
        let t = DynamoTarget::parse("dynamodb://leannodes?region=eu-west-1&endpoint=http://127.0.0.1:5000").expect("parse");
        assert_eq!(
            t,
            DynamoTarget { table: "leannodes".into(), region: Some("eu-west-1".into()), endpoint: Some("http://127.0.0.1:5000".into()) }
        );
        assert_eq!(DynamoTarget::parse("dynamodb://tbl").expect("parse").region, None);
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let err = |url: &str| DynamoTarget::parse(url).expect_err(url).to_string();
        assert!(err("dynamodb://a b").contains("not a DynamoDB table name"), "{}", err("dynamodb://a b"));
        assert!(err("dynamodb://tbl?regoin=x").contains("unknown parameter `regoin`"));
        assert!(err("dynamodb://tbl?endpoint=localhost:8000").contains("must be an http:// or https:// URL"));
        assert!(err("dynamodb://tbl?region=").contains("`region` has no value"));
    }

    #[test]
    fn ttl_never_rounds_down() {
        assert_eq!(ttl_seconds(1_000), 1);
        assert_eq!(ttl_seconds(1_001), 2);
        assert_eq!(audit_sk(42), "00000000000000000042");
    }
}
