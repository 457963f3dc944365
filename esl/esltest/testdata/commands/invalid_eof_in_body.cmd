sendevent CUSTOM
Content-Length: 10

abc