"""Evidence store: seals each closed incident into a signed, hashed, WORM-locked evidence item.

Closed incident -> frames read back from the frames topic (:mod:`.window`) ->
master tar + H.264 working copy + canonical manifest (:mod:`.package`) ->
Ed25519 signature (:mod:`.signing`) -> Object Lock COMPLIANCE bucket
(:mod:`.store`) -> ``EvidenceSealed`` on the evidence topic (:mod:`.worker`).
"""
