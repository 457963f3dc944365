linger

exit

