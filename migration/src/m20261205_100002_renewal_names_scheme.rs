//! Renewal reminders name the scheme (`{scheme_name}`: the scheme's name for a member in several
//! schemes, so their two reminders differ, else 职工医疗互助保障). Templates still as shipped —
//! never edited, so without a provider template id — take the new wording; edited ones are left
//! to the association (its provider has approved their wording).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SmsTemplate {
    Table,
    Occasion,
    BodyZh,
    Params,
    UpdatedBy,
}

const WORDING: [(&str, &str, &str); 3] = [
    (
        "renewal_due_30",
        "您的职工医疗互助保障将于{coverage_end}到期，请及时通过单位工会续互。",
        "您参加的{scheme_name}将于{coverage_end}到期，请及时通过单位工会续互。",
    ),
    (
        "renewal_due_7",
        "您的职工医疗互助保障将于{coverage_end}到期，请及时通过单位工会续互。",
        "您参加的{scheme_name}将于{coverage_end}到期，请及时通过单位工会续互。",
    ),
    (
        "renewal_grace",
        "您的职工医疗互助保障已于{coverage_end}到期，宽限期内续互可保持连续参互。",
        "您参加的{scheme_name}已于{coverage_end}到期，宽限期内续互可保持连续参互。",
    ),
];

async fn reword(
    manager: &SchemaManager<'_>,
    occasion: &str,
    from: (&str, &str),
    to: (&str, &str),
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(SmsTemplate::Table)
        .value(SmsTemplate::BodyZh, to.0)
        .value(SmsTemplate::Params, to.1)
        .and_where(Expr::col(SmsTemplate::Occasion).eq(occasion))
        .and_where(Expr::col(SmsTemplate::UpdatedBy).eq("system"))
        .and_where(Expr::col(SmsTemplate::BodyZh).eq(from.0))
        .to_owned();
    manager.exec_stmt(update).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (occasion, old, new) in WORDING {
            reword(
                manager,
                occasion,
                (old, r#"["coverage_end"]"#),
                (new, r#"["scheme_name","coverage_end"]"#),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (occasion, old, new) in WORDING {
            reword(
                manager,
                occasion,
                (new, r#"["scheme_name","coverage_end"]"#),
                (old, r#"["coverage_end"]"#),
            )
            .await?;
        }
        Ok(())
    }
}
