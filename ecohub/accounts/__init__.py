"""Accounts: who calls the platform and what they may do — users with argon2id
passwords and their sessions, API keys stored as hashes, roles, the request principal,
rate limits, and the resource catalogue that decides who reads which dataset."""
