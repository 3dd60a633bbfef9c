//! The WeChat subscribe-message channel: an occasion's template may name a subscribe-message
//! template (its id, the page the notice opens and how its keywords are filled), and each
//! outbox row remembers when WeChat was tried, so a message is offered to WeChat at most once
//! (a restarted dispatcher goes on by SMS, never to WeChat again).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    WechatTriedAt,
}

#[derive(DeriveIden)]
enum SmsTemplate {
    Table,
    WechatTemplateId,
    WechatPage,
    WechatData,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(
                        ColumnDef::new(Outbox::WechatTriedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let columns = [
            ColumnDef::new(SmsTemplate::WechatTemplateId)
                .string_len(64)
                .null()
                .to_owned(),
            // The mini-program page the notice opens, with {name} placeholders.
            ColumnDef::new(SmsTemplate::WechatPage)
                .string_len(256)
                .null()
                .to_owned(),
            // JSON object: keyword (thing1, date2 …) → value with {name} placeholders.
            ColumnDef::new(SmsTemplate::WechatData)
                .text()
                .null()
                .to_owned(),
        ];
        for col in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(SmsTemplate::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            SmsTemplate::WechatData,
            SmsTemplate::WechatPage,
            SmsTemplate::WechatTemplateId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SmsTemplate::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::WechatTriedAt)
                    .to_owned(),
            )
            .await
    }
}
