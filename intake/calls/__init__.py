"""The helpline call log: calls, risk screening, referrals, consent, follow-ups, disclosures."""
