"""Archives: the event log in signed, compressed segments in an S3 bucket, and back.

``layout`` names the objects and reads and writes a segment (its rows, as the hash chain
hashes them, then its signed checkpoint) and the manifest; ``s3`` is the bucket, through a
boto3 client the caller makes; ``reader`` checks a whole archive, without the database, and
streams its verified rows; ``writer`` appends what is new in a ledger; ``restore`` rebuilds a
ledger from an archive. boto3 itself is imported only by the commands (``adapters/cli``).
"""
