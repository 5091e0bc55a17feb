"""The eligibility self-check: the interview flow (`flow`) and the 申请书 it pre-fills (`application_form`)."""
