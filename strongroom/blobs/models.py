"""Small blobs live in the database, written in the same transaction as the rows naming them."""

from django.db import models


class Blob(models.Model):
    key = models.CharField(max_length=40, primary_key=True)
    data = models.BinaryField()
