sendmsg
call-command: execute
