"""Streamlit helpers shared by the pages (views only: the logic lives in core/)."""
