sendmsg 11111111-2222-3333-4444-555555555555
call-command: execute
execute-app-name: playback
execute-app-arg: a.wav
loops: 3
event-lock: TRUE
Event-UUID: 5e1f0c5a-7d3b-4c8e-9a61-0000000000a1

