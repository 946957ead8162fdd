"""Workspace KPIs, RFM scoring, churn risk and the lifetime-value model."""
