//! Which frameworks apply to an organisation, decided from its business profile, with
//! reasons a person can read. The rules follow what the law or the market asks of a
//! UK business; they inform, they are not legal advice, and the reasons say why so a
//! user can disagree with a specific point.

use ruleiq_core::{
    BusinessProfile,
    profile::{DataSensitivity, Industry},
};

/// The verdict on one framework.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub applicable: bool,
    pub mandatory: bool,
    /// 0–100: how much this framework should matter to the organisation now.
    pub relevance_score: u8,
    pub reasons: Vec<String>,
}

impl Verdict {
    fn new() -> Self {
        Self {
            applicable: false,
            mandatory: false,
            relevance_score: 0,
            reasons: Vec::new(),
        }
    }

    fn because(&mut self, score: u8, reason: impl Into<String>) {
        self.applicable = true;
        self.relevance_score = self.relevance_score.max(score);
        self.reasons.push(reason.into());
    }

    fn must(&mut self, reason: impl Into<String>) {
        self.mandatory = true;
        self.because(100, reason);
    }

    fn not(&mut self, reason: impl Into<String>) {
        self.reasons.push(reason.into());
    }
}

/// The verdict for the framework `slug` on `profile`.
#[must_use]
pub fn assess(profile: &BusinessProfile, slug: &str) -> Verdict {
    let mut v = Verdict::new();
    let uk = profile.country == "GB";
    let planned = profile.mentions(slug);
    match slug {
        "uk-gdpr" => {
            if profile.handles_personal_data && uk {
                v.must("You process personal data in the UK, so UK GDPR, the Data Protection Act 2018 and PECR apply by law.");
            } else if profile.handles_personal_data {
                v.because(70, "You process personal data; UK GDPR applies to any processing of UK residents' data, even from abroad.");
            } else {
                v.not("You said you do not handle personal data. Almost every business does (staff and customer records count), so check this answer.");
            }
            if profile.processes_special_category_data || profile.stores_health_data {
                v.because(100, "You process special category data (such as health data), which needs an Article 9 condition and usually a DPIA.");
            }
            if profile.transfers_data_internationally {
                v.because(
                    100,
                    "You transfer personal data abroad, which needs a UK transfer mechanism.",
                );
            }
        }
        "pci-dss-4.0.1" => {
            if profile.processes_payment_cards {
                v.must("You take card payments; your acquiring bank requires PCI DSS compliance, usually shown with a Self-Assessment Questionnaire.");
            } else {
                v.not("You do not take card payments yourself.");
            }
        }
        "nis2" => {
            if !profile.serves_eu_customers {
                v.not("NIS2 is EU law; it reaches UK businesses only through services provided in the EU, and you said you serve no EU customers.");
            } else if !(profile.industry.nis2_sector() || profile.operates_critical_infrastructure)
            {
                v.not("You serve the EU, but your sector is not one NIS2 lists in its annexes.");
            } else if profile.at_least_medium_sized() || profile.operates_critical_infrastructure {
                v.must("You provide services in the EU in a sector NIS2 covers and are at or above its size threshold (50 staff or EUR 10m turnover), so an EU member state's NIS2 law applies.");
            } else {
                v.because(30, "You serve the EU in a sector NIS2 covers but are below its size threshold; a customer in scope may still pass its supply-chain requirements on to you.");
            }
        }
        "ncsc-caf" => {
            if profile.operates_critical_infrastructure {
                v.must("You operate critical infrastructure; UK regulators of essential services assess operators against the NCSC CAF under the NIS Regulations 2018.");
            } else if profile.industry == Industry::PublicSector {
                v.because(60, "Public-sector bodies are increasingly assessed against the CAF (for example GovAssure).");
            } else {
                v.not("You do not operate critical infrastructure or work in the public sector.");
            }
        }
        "cyber-essentials" => {
            if uk {
                v.because(85, "Recommended for every UK organisation: the NCSC's baseline against the most common internet attacks, and affordable for a small business.");
            } else {
                v.because(
                    40,
                    "A UK baseline certification; useful if you sell to UK customers.",
                );
            }
            if profile.industry == Industry::PublicSector {
                v.must("UK central government contracts that handle personal data or provide ICT services require Cyber Essentials.");
            } else {
                v.reasons.push(
                    "Many public-sector and large-company contracts require it of suppliers."
                        .into(),
                );
            }
        }
        "iso27001-2022" => {
            if profile
                .existing_certifications
                .iter()
                .any(|c| c.to_lowercase().contains("27001"))
            {
                v.because(95, "You hold ISO 27001 already; keeping the certificate needs the ISMS maintained and audited each year.");
            }
            if matches!(
                profile.data_sensitivity,
                DataSensitivity::High | DataSensitivity::Critical
            ) {
                v.because(70, "You hold highly sensitive data; enterprise customers commonly ask suppliers like you for ISO 27001.");
            }
            if matches!(
                profile.industry,
                Industry::Technology | Industry::Finance | Industry::ProfessionalServices
            ) && profile.employee_count >= 20
            {
                v.because(60, "Technology, finance and professional-services firms of your size are often asked for ISO 27001 in tenders.");
            }
            if !v.applicable {
                v.not("Not required by law; worth it when customers or tenders ask for it.");
            }
        }
        "soc2-2017" => {
            if matches!(profile.industry, Industry::Technology) && profile.uses_cloud_services {
                v.because(50, "You run technology services in the cloud; US customers usually ask SaaS suppliers for a SOC 2 report.");
            } else {
                v.not(
                    "SOC 2 is a US attestation; it matters when you sell services to US customers.",
                );
            }
        }
        "nist-csf-2.0" => {
            v.because(30, "A free, widely understood way to structure a security programme; useful alongside a certification.");
            if profile.operates_critical_infrastructure || profile.provides_financial_services {
                v.because(50, "Regulated and critical sectors often use the CSF to describe their security posture.");
            }
        }
        _ => {
            v.not("ruleIQ has no applicability rules for this framework; add it to your planned frameworks to work on it.");
        }
    }
    if planned {
        v.because(
            90,
            "It is among your planned frameworks or existing certifications.",
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> BusinessProfile {
        let mut p = BusinessProfile::minimal("Corner Shop Ltd", Industry::Retail, 8);
        p.handles_personal_data = true;
        p
    }

    #[test]
    fn uk_gdpr_is_mandatory_for_uk_processing_of_personal_data() {
        let v = assess(&shop(), "uk-gdpr");
        assert!(v.applicable && v.mandatory);
        assert_eq!(v.relevance_score, 100);
        let mut abroad = shop();
        abroad.country = "IE".into();
        assert!(!assess(&abroad, "uk-gdpr").mandatory);
        let mut none = shop();
        none.handles_personal_data = false;
        let v = assess(&none, "uk-gdpr");
        assert!(!v.applicable);
        assert!(v.reasons[0].contains("check this answer"));
    }

    #[test]
    fn pci_follows_card_payments() {
        assert!(!assess(&shop(), "pci-dss-4.0.1").applicable);
        let mut cards = shop();
        cards.processes_payment_cards = true;
        let v = assess(&cards, "pci-dss-4.0.1");
        assert!(v.mandatory && v.reasons[0].contains("card payments"));
    }

    #[test]
    fn nis2_needs_eu_service_sector_and_size() {
        let mut p = BusinessProfile::minimal("Medi Ltd", Industry::Healthcare, 60);
        assert!(!assess(&p, "nis2").applicable);
        p.serves_eu_customers = true;
        assert!(assess(&p, "nis2").mandatory);
        p.employee_count = 20;
        let v = assess(&p, "nis2");
        assert!(v.applicable && !v.mandatory && v.relevance_score < 50);
        p.annual_turnover_gbp = Some(12_000_000);
        assert!(
            assess(&p, "nis2").mandatory,
            "turnover alone meets the threshold"
        );
        let mut retail = shop();
        retail.serves_eu_customers = true;
        retail.employee_count = 500;
        assert!(
            !assess(&retail, "nis2").applicable,
            "retail is not a NIS2 sector"
        );
    }

    #[test]
    fn caf_for_critical_infrastructure_and_ce_for_everyone() {
        let mut p = shop();
        assert!(!assess(&p, "ncsc-caf").applicable);
        p.operates_critical_infrastructure = true;
        assert!(assess(&p, "ncsc-caf").mandatory);
        let ce = assess(&shop(), "cyber-essentials");
        assert!(ce.applicable && !ce.mandatory);
        let public = BusinessProfile::minimal("Council", Industry::PublicSector, 300);
        assert!(assess(&public, "cyber-essentials").mandatory);
    }

    #[test]
    fn customers_and_plans_drive_iso_and_soc2() {
        assert!(!assess(&shop(), "iso27001-2022").applicable);
        let mut p = shop();
        p.planned_frameworks = vec!["iso27001-2022".into()];
        let v = assess(&p, "iso27001-2022");
        assert!(v.applicable && !v.mandatory && v.relevance_score == 90);
        let mut saas = BusinessProfile::minimal("SaaSy", Industry::Technology, 30);
        saas.uses_cloud_services = true;
        assert!(assess(&saas, "soc2-2017").applicable);
        assert!(assess(&saas, "iso27001-2022").applicable);
    }
}
