"""Transports: stream (TCP + Unix); datagram and pipes come with issue 5."""
