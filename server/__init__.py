"""Parley: a contact-center interaction server that turns SMS/MMS into routed chat."""
