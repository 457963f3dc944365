sendmsg
Name  :   value with trailing space 
NoColonLine
x:y

