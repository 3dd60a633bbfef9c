//! `sms_template`: the provider template of each reminder occasion, with its approved wording.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sms_template")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub occasion: String,
    pub tencent_template_id: Option<String>,
    pub aliyun_template_code: Option<String>,
    pub body_zh: String,
    pub params: String,
    pub updated_by: String,
    pub updated_at: DateTimeUtc,
    /// WeChat subscribe-message template id (optional second channel).
    pub wechat_template_id: Option<String>,
    /// The mini-program page the notice opens, with `{name}` placeholders.
    pub wechat_page: Option<String>,
    /// JSON object: keyword → value with `{name}` placeholders.
    pub wechat_data: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
